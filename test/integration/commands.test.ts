/** Commands end to end over both transports: gateway HTTP API → device SDK onCommand → lifecycle. */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandStatus, encodeCommandResult, FrameType, type CommandFrame } from '../../devices/codec/index.js';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { RawDevice } from '../helpers/raw-device.js';
import { sdkDevice } from '../helpers/devices.js';
import { deviceToken, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const gws: TestGateway[] = [];
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const g of gws.splice(0)) await g.close();
});

type Transport = 'ws' | 'mqtt';

async function gateway(overrides: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const g = await startGateway({ mqttPort: await freePort(), ...overrides });
  gws.push(g);
  return g;
}

function urlOf(g: TestGateway, t: Transport): string {
  return t === 'ws' ? g.ws : `mqtt://127.0.0.1:${g.gateway.mqttPort}`;
}

const device = (url: string, id: string): DeviceClient => sdkDevice(url, id, clients);

async function post(g: TestGateway, id: string, body: unknown): Promise<{ status: number; body: any }> {
  return g.api(`/api/devices/${id}/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function finalState(g: TestGateway, commandId: string, timeoutMs = 10_000): Promise<any> {
  return waitFor(async () => {
    const { body } = await g.api(`/api/commands/${commandId}`);
    return ['acked', 'failed', 'expired', 'timed_out'].includes(body.state) ? body : undefined;
  }, `command ${commandId} to finish`, timeoutMs);
}

describe.each<Transport>(['ws', 'mqtt'])('commands over %s', (transport) => {
  it('goes queued → sent → delivered → acked, with the handler\'s result', async () => {
    const g = await gateway();
    const d = device(urlOf(g, transport), `cmd-${transport}-1`);
    d.onCommand('set-interval', (args) => ({ applied: args }));
    await d.connect();
    const { status, body } = await post(g, d.deviceId, { name: 'set-interval', args: { ms: 500 }, ttlMs: 10_000 });
    expect(status).toBe(201);
    // The device is online, so the answer may already say sent.
    expect(body).toMatchObject({ name: 'set-interval', args: { ms: 500 } });
    expect(['queued', 'sent']).toContain(body.state);
    const done = await finalState(g, body.id);
    expect(done).toMatchObject({ state: 'acked', result: { applied: { ms: 500 } } });
    expect(done.history.map((h: { state: string }) => h.state)).toEqual(['queued', 'sent', 'delivered', 'acked']);
    for (let i = 1; i < done.history.length; i++) expect(done.history[i].at).toBeGreaterThanOrEqual(done.history[i - 1].at);
  });

  it('fails with the error message when the handler throws, and when the device does not know the command', async () => {
    const g = await gateway();
    const d = device(urlOf(g, transport), `cmd-${transport}-2`);
    d.onCommand('open-valve', () => {
      throw new Error('valve stuck');
    });
    await d.connect();
    const thrown = await finalState(g, (await post(g, d.deviceId, { name: 'open-valve' })).body.id);
    expect(thrown).toMatchObject({ state: 'failed', error: 'valve stuck' });
    const unknown = await finalState(g, (await post(g, d.deviceId, { name: 'self-destruct' })).body.id);
    expect(unknown.state).toBe('failed');
    expect(unknown.error).toMatch(/rejected by the device: unknown command "self-destruct"/);
  });

  it('keeps commands for an offline device and delivers them in order when it reconnects', async () => {
    const g = await gateway();
    const id = `cmd-${transport}-3`;
    const first = device(urlOf(g, transport), id);
    await first.connect();
    await first.close();
    await waitFor(async () => (await g.api(`/api/devices/${id}`)).body.online === false, 'offline');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(g, id, { name: 'step', args: { i } })).body.id);
    await new Promise((r) => setTimeout(r, 200));
    for (const c of ids) expect((await g.api(`/api/commands/${c}`)).body.state).toBe('queued');
    const order: number[] = [];
    const again = device(urlOf(g, transport), id);
    again.onCommand('step', (args) => {
      order.push((args as { i: number }).i);
      return 'ok';
    });
    await again.connect();
    for (const c of ids) expect((await finalState(g, c)).state).toBe('acked');
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('expires a command whose TTL passes before delivery', async () => {
    const g = await gateway();
    const id = `cmd-${transport}-4`;
    const d = device(urlOf(g, transport), id);
    await d.connect();
    await d.close();
    await waitFor(async () => (await g.api(`/api/devices/${id}`)).body.online === false, 'offline');
    const c = await finalState(g, (await post(g, id, { name: 'reboot', ttlMs: 300 })).body.id, 5000);
    expect(c).toMatchObject({ state: 'expired' });
    expect(c.history.map((h: { state: string }) => h.state)).toEqual(['queued', 'expired']);
  });

  it('times out a delivered command whose result never comes', async () => {
    const g = await gateway();
    const d = device(urlOf(g, transport), `cmd-${transport}-5`);
    d.onCommand('slow', () => new Promise(() => {}));
    await d.connect();
    const c = await finalState(g, (await post(g, d.deviceId, { name: 'slow', timeoutMs: 400 })).body.id, 5000);
    expect(c.state).toBe('timed_out');
    expect(c.history.map((h: { state: string }) => h.state)).toEqual(['queued', 'sent', 'delivered', 'timed_out']);
  });

  it('delivers a command queued before a gateway restart, after it', async () => {
    const dataDir = tempDir();
    const [port, mqttPort] = [await freePort(), await freePort()];
    const first = await startGateway({ port, mqttPort, dataDir });
    const id = `cmd-${transport}-6`;
    // The device must be known for the command to be accepted.
    const d0 = device(urlOf(first, transport), id);
    await d0.connect();
    await d0.close();
    const { body } = await post(first, id, { name: 'calibrate', args: { to: 7 } });
    expect(body.state).toBe('queued');
    await first.gateway.close();
    const second = await gateway({ port, mqttPort, dataDir });
    expect((await second.api(`/api/commands/${body.id}`)).body.state).toBe('queued');
    const d = device(urlOf(second, transport), id);
    d.onCommand('calibrate', (args) => args);
    await d.connect();
    expect(await finalState(second, body.id)).toMatchObject({ state: 'acked', result: { to: 7 } });
  });

  it('makes one command of the same idempotency key sent twice', async () => {
    const g = await gateway();
    const d = device(urlOf(g, transport), `cmd-${transport}-7`);
    let runs = 0;
    d.onCommand('reboot', () => ++runs);
    await d.connect();
    const a = await post(g, d.deviceId, { name: 'reboot', idempotencyKey: 'op-1' });
    const b = await post(g, d.deviceId, { name: 'reboot', idempotencyKey: 'op-1' });
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body.id).toBe(a.body.id);
    await finalState(g, a.body.id);
    expect(runs).toBe(1);
    expect((await g.api(`/api/devices/${d.deviceId}/commands`)).body.commands).toHaveLength(1);
  });

  it('delivers 100 commands to one device in the order they were sent', async () => {
    const g = await gateway();
    const d = device(urlOf(g, transport), `cmd-${transport}-8`);
    const seen: number[] = [];
    d.onCommand('n', (args) => {
      seen.push(args as number);
      return args;
    });
    await d.connect();
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push((await post(g, d.deviceId, { name: 'n', args: i })).body.id);
    await waitFor(() => seen.length === 100, '100 commands handled', 15_000);
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const list = (await g.api(`/api/devices/${d.deviceId}/commands?limit=100`)).body.commands;
    expect(list.map((c: { args: number }) => c.args)).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i)); // newest first
  });
});

describe.each([true, false])('commands over MQTT without the SDK, clean session %s', (clean) => {
  // Issue 15 point 3: with a clean session aedes's 'ack' event names no packet; the gateway matches
  // the PUBACK's packet id to the command itself.
  it("marks a command delivered on the device's PUBACK alone (no result frame)", async () => {
    const g = await gateway();
    const id = `cmd-puback-${clean}`;
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${g.gateway.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), clean, reconnectPeriod: 0 });
    try {
      await c.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
      const cmd = (await post(g, id, { name: 'noop', timeoutMs: 60_000 })).body;
      const delivered = await waitFor(async () => {
        const { body } = await g.api(`/api/commands/${cmd.id}`);
        return body.state === 'delivered' ? body : undefined;
      }, 'the PUBACK to mark the command delivered');
      expect(delivered.history.at(-1)).toMatchObject({ state: 'delivered', note: 'MQTT PUBACK from the device' });
    } finally {
      await c.endAsync();
    }
  });
});

describe('a delivered command and a dropped connection (issue 15 point 9)', () => {
  const commands = (d: RawDevice): CommandFrame[] => d.received.filter((f): f is CommandFrame => f.type === FrameType.Command);

  it('is not sent again after a reconnect (a sent one is); its result still completes it', async () => {
    const g = await gateway();
    const id = 'cmd-delivered-drop';
    const first = await RawDevice.connect(g.ws, id, deviceToken(id));
    const a = (await post(g, id, { name: 'delivered-one', timeoutMs: 60_000 })).body;
    const b = (await post(g, id, { name: 'sent-one', timeoutMs: 60_000 })).body;
    await waitFor(() => commands(first).length === 2, 'both commands to arrive');
    // The device confirms receipt of the first only, then its connection drops.
    first.send(encodeCommandResult({ timestamp: Date.now() }, { commandId: a.id, status: CommandStatus.Received }));
    await waitFor(async () => (await g.api(`/api/commands/${a.id}`)).body.state === 'delivered', 'the first command to be delivered');
    first.terminate();
    await waitFor(async () => (await g.api(`/api/commands/${b.id}`)).body.state === 'queued', 'the unconfirmed command to be requeued');
    const again = await RawDevice.connect(g.ws, id, deviceToken(id));
    try {
      // A command posted now arrives after anything requeued: when it is there, every resend is too.
      const c = (await post(g, id, { name: 'marker', timeoutMs: 60_000 })).body;
      await waitFor(() => commands(again).some((f) => f.commandId === c.id), 'the marker command');
      expect(commands(again).map((f) => f.commandId)).toEqual([b.id, c.id]);
      again.send(encodeCommandResult({ timestamp: Date.now() }, { commandId: a.id, status: CommandStatus.Ok, payload: '{"done":true}' }));
      const done = await finalState(g, a.id);
      expect(done).toMatchObject({ state: 'acked', result: { done: true } });
    } finally {
      again.close();
    }
  });
});

describe('command API errors', () => {
  it('answers bad requests with the documented status and code', async () => {
    const g = await gateway({ commandMaxArgsBytes: 64, commandQueue: 2 });
    const d = device(g.ws, 'cmd-err');
    await d.connect();
    await d.close();
    const raw = (body: string) => g.api('/api/devices/cmd-err/commands', { method: 'POST', body });
    expect(await post(g, 'nobody', { name: 'x' })).toMatchObject({ status: 404, body: { error: { code: 'DEVICE_NOT_FOUND' } } });
    expect(await raw('{not json')).toMatchObject({ status: 400, body: { error: { code: 'BAD_JSON' } } });
    expect(await post(g, 'cmd-err', { args: 1 })).toMatchObject({ status: 400, body: { error: { code: 'BAD_COMMAND' } } });
    expect(await post(g, 'cmd-err', { name: 'x', ttlMs: -1 })).toMatchObject({ status: 400, body: { error: { code: 'BAD_COMMAND' } } });
    expect(await post(g, 'cmd-err', { name: 'x', args: 'y'.repeat(100) })).toMatchObject({ status: 413, body: { error: { code: 'COMMAND_TOO_LARGE' } } });
    expect((await post(g, 'cmd-err', { name: 'x' })).status).toBe(201);
    expect((await post(g, 'cmd-err', { name: 'x' })).status).toBe(201);
    expect(await post(g, 'cmd-err', { name: 'x' })).toMatchObject({ status: 429, body: { error: { code: 'COMMAND_QUEUE_FULL' } } });
    expect(await g.api('/api/commands/nope')).toMatchObject({ status: 404, body: { error: { code: 'COMMAND_NOT_FOUND' } } });
    const noToken = await fetch(`${g.http}/api/devices/cmd-err/commands`, { method: 'POST', body: '{"name":"x"}' });
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });
});
