/**
 * Scale-out: two gateway processes sharing a real Mosquitto as their backbone. A device connected
 * to instance A is seen live by a dashboard on instance B, and a command sent through B's API
 * reaches the device on A and is acked; a device moving between instances stays exactly-once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CommandStatus, encodeCommandResult, encodeTelemetry, FrameType, type CommandFrame } from '../../devices/codec/index.js';
import { RawDevice } from '../helpers/raw-device.js';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { sdkDevice } from '../helpers/devices.js';
import { api, deviceToken, gatewayArgs, OPERATOR_TOKEN, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { LiveClient } from '../helpers/live-client.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;
let broker: Mosquitto | undefined;
const gateways: ChildGateway[] = [];
const devices: DeviceClient[] = [];
const lives: LiveClient[] = [];

afterEach(async () => {
  for (const l of lives.splice(0)) l.ws.close();
  for (const d of devices.splice(0)) await d.close().catch(() => {});
  for (const g of gateways.splice(0)) await g.stop();
  await broker?.stop();
  broker = undefined;
});

async function instance(name: string, extra: string[] = []): Promise<ChildGateway> {
  const g = await spawnGateway(gatewayArgs(tempDir(`cluster-${name}-`), '--cluster-url', broker!.url, '--instance-id', name, '--mqtt-share-group', 'cluster-test', ...extra));
  gateways.push(g);
  return g;
}

const device = (url: string, id: string): DeviceClient => sdkDevice(url, id, devices);

describe.skipIf(!hasMosquitto)('two gateway instances over a Mosquitto backbone', () => {
  it('a dashboard on B sees a device on A live, and a command sent through B reaches it and is acked', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');

    const live = await LiveClient.connect(b.ws, OPERATOR_TOKEN);
    lives.push(live);
    live.send({ op: 'subscribe', streams: ['fleet', 'commands', 'device:climate-0007'] });

    const dev = device(a.ws, 'climate-0007');
    dev.onCommand('set-interval', (args) => ({ applied: args }));
    await dev.connect();

    // B lists the device as online, held by A.
    await waitFor(async () => (await api(b.http, '/api/devices/climate-0007')).body?.online === true, 'B to see the device online');
    expect((await api(b.http, '/api/devices/climate-0007')).body).toMatchObject({ online: true, transport: 'ws', instance: 'gw-a' });

    // Its readings reach B's dashboard client live. A publishes a device's points only once it has
    // heard of B's interest (B announces it when its client subscribes, over the broker), so under
    // load the first readings may come before that: the device keeps sending, as a real one does,
    // a burst of 5 every 500 ms, until B's client sees the last value of a burst (at most 20 bursts).
    const t0 = Date.now();
    let sent = 0;
    let streamed = false;
    for (let burst = 0; burst < 20 && !streamed; burst++) {
      for (let i = 0; i < 5; i++) dev.send([{ channel: 1, value: 20 + i, type: 'f32' }], t0 + sent++);
      streamed = await live.waitFor((m) => m.type === 'device' && m.id === 'climate-0007' && JSON.stringify(m).includes('24'), 'B to stream the readings sent to A', 500).then(
        () => true,
        () => false,
      );
    }
    expect(streamed, 'B to stream the readings sent to A within 20 bursts').toBe(true);

    // A command through B: delivered to the device on A, acked, and the result is on B.
    const created = await api(b.http, '/api/devices/climate-0007/commands', { method: 'POST', body: JSON.stringify({ name: 'set-interval', args: { ms: 500 } }), headers: { 'content-type': 'application/json' } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const done = await waitFor(async () => {
      const c = (await api(b.http, `/api/commands/${id}`)).body;
      return c && ['acked', 'failed', 'expired', 'timed_out'].includes(c.state) ? c : undefined;
    }, 'the command to finish', 15_000);
    expect(done).toMatchObject({ state: 'acked', result: { applied: { ms: 500 } }, owner: 'gw-b' });
    expect(done.history.map((h: { state: string }) => h.state)).toEqual(['queued', 'sent', 'delivered', 'acked']);
    // A answers for it too (replicated), and B's dashboard saw the command change live.
    await waitFor(async () => (await api(a.http, `/api/commands/${id}`)).body?.state === 'acked', 'A to show the command acked');
    await live.waitFor((m) => m.type === 'command' && m.command?.id === id && m.command?.state === 'acked', 'the command event on B');

    // Telemetry was ingested once, by A; B never saw a frame, only A's coalesced live points (B's
    // client follows the device) and A's summary of the device's counters and last values.
    const metricsA = await (await fetch(`${a.http}/metrics`)).text();
    const metricsB = await (await fetch(`${b.http}/metrics`)).text();
    const figure = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
    expect(figure(metricsA, 'gateway_readings_total')).toBe(sent);
    expect(figure(metricsB, 'gateway_readings_total')).toBe(0);
    expect(figure(metricsB, 'gateway_frames_total')).toBe(0);
    expect(figure(metricsA, 'gateway_cluster_live_messages_sent_total')).toBeGreaterThan(0);
    expect(figure(metricsB, 'gateway_cluster_live_messages_sent_total')).toBe(0);
    const onB = await waitFor(async () => {
      const d = (await api(b.http, '/api/devices/climate-0007')).body;
      return d?.counters?.readings === sent ? d : undefined;
    }, "A's summary to reach B");
    expect(onB.last['1']).toMatchObject({ value: 24 });
  });

  it('a device that moves from A to B is replaced there, and B drops the replays of what A stored', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    const id = 'power-0042';
    const frame = (seq: number) => encodeTelemetry({ epoch: 7, seq, timestamp: 1_700_000_000_000 + seq }, [{ channel: 1, value: seq }]);
    const onA = await RawDevice.connect(a.ws, id, deviceToken(id));
    for (let s = 0; s < 20; s++) onA.send(frame(s));
    await onA.waitAck(7, 19);
    await waitFor(async () => (await api(b.http, `/api/devices/${id}`)).body?.counters?.frames === 20, "A's summary of the 20 frames on B");

    // The same id connects to B while A still holds it: A closes its connection as replaced.
    const onB = await RawDevice.connect(b.ws, id, deviceToken(id));
    expect((await onA.closed).code).toBe(4409);
    await waitFor(async () => (await api(a.http, `/api/devices/${id}`)).body?.instance === 'gw-b', 'A to see the device held by B');
    // The device resends what it thinks unsafe (10..19) and goes on (20..24): B drops the replays.
    for (let s = 10; s < 25; s++) onB.send(frame(s));
    await onB.waitAck(7, 24);
    // Both show the sum of what each took: 20 frames on A, 5 new and 10 replays on B.
    for (const g of [b, a]) {
      await waitFor(async () => (await api(g.http, `/api/devices/${id}`)).body?.counters?.frames === 25, 'the counters to add up');
      expect((await api(g.http, `/api/devices/${id}`)).body).toMatchObject({ online: true, instance: 'gw-b', counters: { frames: 25, duplicates: 10, gaps: 0 } });
    }
    const metricsB = await (await fetch(`${b.http}/metrics`)).text();
    expect(Number(/^gateway_frames_total (\d+)/m.exec(metricsB)?.[1])).toBe(5);
    onB.close();
    const offline = await waitFor(async () => {
      const d = (await api(a.http, `/api/devices/${id}`)).body;
      return d?.online === false ? d : undefined;
    }, 'A to see it go offline on B');
    expect(offline.offlineCause).toBe('closed');
  });

  it('a command owned by B for a device on A that dies is requeued, and reaches the device when it reconnects to B', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    // Of no declared type, so it takes any command. It receives commands and never answers them: they stay `sent`.
    const id = 'probe-0100';
    const onA = await RawDevice.connect(a.ws, id, deviceToken(id));
    await waitFor(async () => (await api(b.http, `/api/devices/${id}`)).body?.instance === 'gw-a', 'B to see the device on A');
    const created = await api(b.http, `/api/devices/${id}/commands`, { method: 'POST', body: JSON.stringify({ name: 'open-valve', args: { valve: 2 }, ttlMs: 60_000 }) });
    expect(created.status).toBe(201);
    const commandId = created.body.id as string;
    await waitFor(() => onA.received.some((f) => f.type === FrameType.Command && (f as CommandFrame).commandId === commandId), 'the command frame at the device on A');
    expect((await api(b.http, `/api/commands/${commandId}`)).body.state).toBe('sent');

    await a.stop('SIGKILL');
    gateways.splice(gateways.indexOf(a), 1);
    await waitFor(async () => (await api(b.http, `/api/commands/${commandId}`)).body?.state === 'queued', 'B to requeue the command when A went away', 15_000);
    const onB = await RawDevice.connect(b.ws, id, deviceToken(id));
    await waitFor(() => onB.received.some((f) => f.type === FrameType.Command && (f as CommandFrame).commandId === commandId), 'the command frame again, now from B');
    onB.send(encodeCommandResult({ timestamp: Date.now() }, { commandId, status: CommandStatus.Ok, payload: '"opened"' }));
    await waitFor(async () => (await api(b.http, `/api/commands/${commandId}`)).body?.state === 'acked', 'the command acked');
    const history = (await api(b.http, `/api/commands/${commandId}`)).body.history.map((h: { state: string }) => h.state);
    expect(history).toEqual(['queued', 'sent', 'queued', 'sent', 'acked']);
    onB.close();
  });

  it('marks the devices of an instance that dies offline on the others', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    const dev = device(a.ws, 'vibration-0001');
    await dev.connect();
    await waitFor(async () => (await api(b.http, '/api/devices/vibration-0001')).body?.online === true, 'B to see it online');
    await a.stop('SIGKILL');
    gateways.splice(gateways.indexOf(a), 1);
    // Mosquitto publishes A's will once its keepalive lapses, or at once on the dropped socket.
    const onB = await waitFor(async () => {
      const d = (await api(b.http, '/api/devices/vibration-0001')).body;
      return d?.online === false ? d : undefined;
    }, 'B to mark it offline', 15_000);
    expect(onB.offlineCause).toBe('connection_lost');
    expect(onB.offlineDetail).toContain('gw-a');

    // A comes back under the same name without the device; an instance that joins after that
    // must not believe the broker's old retained word that the device is online at A.
    await dev.close();
    await instance('gw-a');
    await new Promise((r) => setTimeout(r, 300));
    const c = await instance('gw-c');
    await new Promise((r) => setTimeout(r, 300));
    expect((await api(c.http, '/api/devices/vibration-0001')).body).toMatchObject({ online: false });
  });
});
