/**
 * Device management without restarts (issue 17): add (token shown once), edit, labels and the
 * label filter, token rotation with a grace period, disable (WS and MQTT connections closed, new
 * ones refused) and enable, delete (with history), every refusal with its code, the metrics, and
 * a registry that survives kill -9 of the gateway process over the registry file it imported.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceList, DeviceSummary, DeviceTokenAnswer } from '../../devices/api/json.js';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { hashToken } from '../../gateway/auth.js';
import { deviceToken, gatewayArgs, OPERATOR_TOKEN, spawnGateway, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { RawDevice, waitAcked } from '../helpers/raw-device.js';
import { RawMqttDevice } from '../helpers/raw-mqtt-device.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway;
const open: { close(): void }[] = [];

beforeAll(async () => {
  gw = await startGateway({ mqttPort: await freePort() });
});
afterAll(async () => {
  for (const d of open) d.close();
  await gw?.close();
});

const json = (method: string, body?: unknown): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
});

/** Opens a WS device or answers the HTTP status of the refused upgrade. */
async function wsStatus(id: string, token: string): Promise<number> {
  try {
    const d = await RawDevice.connect(gw.ws, id, token);
    d.close();
    await within(d.closed, `${id}'s socket to close`);
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

async function connectWs(id: string, token: string): Promise<RawDevice> {
  const d = await RawDevice.connect(gw.ws, id, token);
  open.push(d);
  return d;
}

/** The CONNACK return code an MQTT CONNECT gets (0: accepted). */
async function mqttConnack(id: string, token: string): Promise<number> {
  try {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, { clientId: id, username: id, password: token, reconnectPeriod: 0, connectTimeout: 5000 });
    await c.endAsync();
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** A promise that must settle within `ms` (a test never waits unbounded). */
function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

function telemetry(seq: number, value: number): Uint8Array {
  return encodeTelemetry({ timestamp: Date.now(), epoch: 1, seq }, [{ channel: 1, type: 'f32', value }]);
}

describe('POST /api/devices', () => {
  it('adds a device at once and shows its token once: it connects with it, the fleet key no longer works for it', async () => {
    const { status, body } = await gw.api<DeviceTokenAnswer>('/api/devices', json('POST', { id: 'new-1', type: 'climate', name: 'Roof sensor', labels: { site: 'north', floor: '3' } }));
    expect(status).toBe(201);
    expect(body.token).toMatch(/^[0-9a-f]{64}$/);
    expect(body.previousTokenValidUntil).toBeNull();
    expect(body.device).toMatchObject({ id: 'new-1', type: 'climate', name: 'Roof sensor', labels: { floor: '3', site: 'north' }, disabled: false, online: false });
    const got = await gw.api<DeviceSummary>('/api/devices/new-1');
    expect(got.body).toMatchObject({ name: 'Roof sensor', labels: { site: 'north' } });
    expect(JSON.stringify(got.body)).not.toContain(body.token);
    expect(await wsStatus('new-1', body.token)).toBe(101);
    expect(await wsStatus('new-1', deviceToken('new-1'))).toBe(401);
    expect(await mqttConnack('new-1', body.token)).toBe(0);
  });

  it('refuses an id that exists (409), a bad id, bad labels, an unknown type, unknown fields and bad JSON (400), changing nothing', async () => {
    await gw.api('/api/devices', json('POST', { id: 'dup-1' }));
    const cases: [unknown, number, string][] = [
      [{ id: 'dup-1' }, 409, 'DEVICE_EXISTS'],
      [{ id: 'bad id' }, 400, 'BAD_DEVICE_ID'],
      [{}, 400, 'BAD_DEVICE_ID'],
      [{ id: 'lab-1', labels: { 'no spaces': 'x' } }, 400, 'BAD_LABELS'],
      [{ id: 'lab-2', labels: { site: 'a=b' } }, 400, 'BAD_LABELS'],
      [{ id: 'lab-3', labels: ['site=north'] }, 400, 'BAD_LABELS'],
      [{ id: 'typ-1', type: 'toaster' }, 400, 'UNKNOWN_DEVICE_TYPE'],
      [{ id: 'fld-1', token: 'mine' }, 400, 'BAD_DEVICE'],
      [{ id: 'nam-1', name: '' }, 400, 'BAD_DEVICE'],
      ['{"id": ', 400, 'BAD_JSON'],
    ];
    for (const [body, status, code] of cases) {
      const r = await gw.api('/api/devices', json('POST', body));
      expect([r.status, r.body.error.code], JSON.stringify(body)).toEqual([status, code]);
    }
    for (const id of ['lab-1', 'lab-2', 'lab-3', 'typ-1', 'fld-1', 'nam-1']) expect((await gw.api(`/api/devices/${id}`)).status).toBe(404);
  });
});

describe('PATCH /api/devices/{id} and the label filter', () => {
  it('edits name, type and labels live, and GET /api/devices?label=k=v filters with AND', async () => {
    await gw.api('/api/devices', json('POST', { id: 'lbl-a', labels: { site: 'north', role: 'pump' } }));
    await gw.api('/api/devices', json('POST', { id: 'lbl-b', labels: { site: 'north' } }));
    await gw.api('/api/devices', json('POST', { id: 'lbl-c', labels: { site: 'south', role: 'pump' } }));
    const ids = async (q: string) => (await gw.api<DeviceList>(`/api/devices?${q}`)).body.devices.map((d) => d.id).filter((id) => id.startsWith('lbl-'));
    expect(await ids('label=site=north')).toEqual(['lbl-a', 'lbl-b']);
    expect(await ids('label=site=north&label=role=pump')).toEqual(['lbl-a']);
    const p = await gw.api<DeviceSummary>('/api/devices/lbl-b', json('PATCH', { name: 'Pump B', type: 'power', labels: { site: 'north', role: 'pump' } }));
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ id: 'lbl-b', name: 'Pump B', type: 'power', labels: { site: 'north', role: 'pump' } });
    expect(await ids('label=site=north&label=role=pump')).toEqual(['lbl-a', 'lbl-b']);
    const cleared = await gw.api<DeviceSummary>('/api/devices/lbl-b', json('PATCH', { name: null }));
    expect(cleared.body.name).toBeNull();
    expect(cleared.body.type).toBe('power');
  });

  it('refuses a bad label filter (400 BAD_QUERY) and a bad patch, and 404s an unknown device without a fleet key', async () => {
    for (const q of ['label=site', 'label==north', 'label=site=a%20b']) {
      const r = await gw.api(`/api/devices?${q}`);
      expect([r.status, r.body.error.code], q).toEqual([400, 'BAD_QUERY']);
    }
    expect((await gw.api('/api/devices/lbl-a', json('PATCH', { labels: { '-x': '1' } }))).body.error.code).toBe('BAD_LABELS');
    expect((await gw.api('/api/devices/lbl-a', json('PATCH', { type: 'toaster' }))).body.error.code).toBe('UNKNOWN_DEVICE_TYPE');
    expect((await gw.api('/api/devices/lbl-a', json('PUT', {}))).status).toBe(405);
  });
});

describe('POST /api/devices/{id}/token', () => {
  it('keeps the old token working during the grace period and refuses it after; the new one works at once', async () => {
    const first = (await gw.api<DeviceTokenAnswer>('/api/devices', json('POST', { id: 'rot-1' }))).body;
    const before = Date.now();
    const second = await gw.api<DeviceTokenAnswer>('/api/devices/rot-1/token', json('POST', { graceSeconds: 600 }));
    expect(second.status).toBe(200);
    expect(second.body.token).not.toBe(first.token);
    expect(second.body.previousTokenValidUntil).toBeGreaterThanOrEqual(before + 600_000);
    // Both work in the grace period, on both transports.
    for (const token of [first.token, second.body.token]) {
      expect(await wsStatus('rot-1', token)).toBe(101);
      expect(await mqttConnack('rot-1', token)).toBe(0);
    }
    // A short grace, waited out: only one token before the newest is kept, so the first one ends now.
    const third = (await gw.api<DeviceTokenAnswer>('/api/devices/rot-1/token', json('POST', { graceSeconds: 1 }))).body;
    expect(await wsStatus('rot-1', first.token)).toBe(401);
    expect(await wsStatus('rot-1', third.token)).toBe(101);
    await waitFor(async () => Date.now() > third.previousTokenValidUntil! && (await wsStatus('rot-1', second.body.token)) === 401, 'the old token to be refused after its grace', 15_000, 200);
    expect(await mqttConnack('rot-1', second.body.token)).toBe(4);
    expect(await wsStatus('rot-1', third.token)).toBe(101);
  });

  it('with graceSeconds 0 refuses the old token at once; a fleet-key device rotates off its derived token', async () => {
    const { body } = await gw.api<DeviceTokenAnswer>('/api/devices/fleet-rot/token', json('POST', { graceSeconds: 0 }));
    expect(body.previousTokenValidUntil).toBeNull();
    expect(await wsStatus('fleet-rot', deviceToken('fleet-rot'))).toBe(401);
    expect(await wsStatus('fleet-rot', body.token)).toBe(101);
    // Default grace: the derived token keeps working for an hour.
    const d = await gw.api<DeviceTokenAnswer>('/api/devices/fleet-rot2/token', { method: 'POST' });
    expect(d.body.previousTokenValidUntil! - Date.now()).toBeGreaterThan(3500_000);
    expect(await wsStatus('fleet-rot2', deviceToken('fleet-rot2'))).toBe(101);
  });

  it.each([[{ graceSeconds: -1 }], [{ graceSeconds: 1.5 }], [{ graceSeconds: 604801 }], [{ graceSeconds: '60' }], [{ grace: 60 }]])('refuses %j with 400 BAD_DEVICE', async (body) => {
    const r = await gw.api('/api/devices/rot-1/token', json('POST', body));
    expect([r.status, r.body.error.code]).toEqual([400, 'BAD_DEVICE']);
  });
});

describe('disable and enable', () => {
  it('closes a WebSocket device with 4410 DEVICE_DISABLED, refuses it (HTTP 403, CONNACK 5) until enabled', async () => {
    const token = deviceToken('dis-ws');
    const d = await connectWs('dis-ws', token);
    d.send(telemetry(1, 1));
    await waitAcked(d, 1, 1, 1);
    const r = await gw.api<DeviceSummary>('/api/devices/dis-ws/disable', { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body.disabled).toBe(true);
    expect(await within(d.closed, 'the disabled device to be closed')).toEqual({ code: 4410, reason: 'DEVICE_DISABLED' });
    await waitFor(async () => (await gw.api<DeviceSummary>('/api/devices/dis-ws')).body.online === false, 'dis-ws offline');
    const refused = await RawDevice.connect(gw.ws, 'dis-ws', token).catch((err: { status: number; body: string }) => err);
    expect((refused as { status: number }).status).toBe(403);
    expect(JSON.parse((refused as { body: string }).body).error.code).toBe('DEVICE_DISABLED');
    expect(await mqttConnack('dis-ws', token)).toBe(5);
    // A wrong token is still UNAUTHORIZED: only the device learns it is disabled.
    expect(await wsStatus('dis-ws', deviceToken('other'))).toBe(401);
    expect((await gw.api<DeviceSummary>('/api/devices/dis-ws/enable', { method: 'POST' })).body.disabled).toBe(false);
    expect(await wsStatus('dis-ws', token)).toBe(101);
  });

  it('disconnects an MQTT device and refuses its reconnect with CONNACK 5', async () => {
    const token = deviceToken('dis-mqtt');
    const d = await RawMqttDevice.connect(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, 'dis-mqtt', token);
    open.push(d);
    await waitFor(async () => (await gw.api<DeviceSummary>('/api/devices/dis-mqtt')).body.online, 'dis-mqtt online');
    await gw.api('/api/devices/dis-mqtt/disable', { method: 'POST' });
    await within(d.closed, 'the disabled MQTT device to be disconnected');
    const summary = await waitFor(async () => {
      const b = (await gw.api<DeviceSummary>('/api/devices/dis-mqtt')).body;
      return b.online ? undefined : b;
    }, 'dis-mqtt offline');
    expect(summary).toMatchObject({ offlineCause: 'kicked', offlineDetail: 'DEVICE_DISABLED', disabled: true });
    expect(await mqttConnack('dis-mqtt', token)).toBe(5);
  });
});

describe('DELETE /api/devices/{id}', () => {
  it('closes the connection with 4411, forgets the token and the device, and with history=true its readings', async () => {
    const { token } = (await gw.api<DeviceTokenAnswer>('/api/devices', json('POST', { id: 'del-1' }))).body;
    const d = await connectWs('del-1', token);
    // An open alarm of the device clears with it, saying why (it would otherwise stay open forever).
    const rule = { name: 'hot', severity: 'major', deviceId: 'del-1', condition: { kind: 'above', channel: 1, threshold: 40 } };
    expect((await gw.api('/api/alarm-rules', json('POST', rule))).status).toBe(201);
    const t0 = Date.now();
    d.send(telemetry(1, 42));
    await waitAcked(d, 1, 1, 1);
    const alarmsOf = async () => (await gw.api('/api/alarms?device=del-1&state=active,acknowledged,cleared')).body.alarms;
    await waitFor(async () => (await alarmsOf()).length === 1, 'the alarm of del-1');
    const hist = async () => (await gw.api(`/api/devices/del-1/history?channel=1&from=${t0 - 60_000}&to=${Date.now() + 60_000}`)).body;
    expect((await hist()).points.length).toBe(1);
    const r = await gw.api('/api/devices/del-1?history=true', { method: 'DELETE' });
    expect(r).toEqual({ status: 200, body: { id: 'del-1', deleted: true, history: true } });
    expect(await within(d.closed, 'the deleted device to be closed')).toEqual({ code: 4411, reason: 'DEVICE_DELETED' });
    expect((await gw.api('/api/devices/del-1')).status).toBe(404);
    const [cleared] = await alarmsOf();
    expect(cleared).toMatchObject({ state: 'cleared' });
    expect(cleared.transitions.at(-1)).toMatchObject({ state: 'cleared', note: 'the device was deleted' });
    expect(await wsStatus('del-1', token)).toBe(401);
    // Its readings are gone: a device of the same id starts with no history.
    expect(await gw.gateway.storage.channels('del-1')).toEqual([]);
    expect((await gw.api('/api/devices/del-1', { method: 'DELETE' })).body.error.code).toBe('DEVICE_NOT_FOUND');
    expect((await gw.api('/api/devices/del-1?history=maybe', { method: 'DELETE' })).body.error.code).toBe('BAD_QUERY');
  });
});

describe('browser sessions', () => {
  it('may change devices only from the gateway\'s own origin (403 CROSS_ORIGIN otherwise)', async () => {
    const login = await fetch(`${gw.http}/api/session`, { method: 'POST', headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, connection: 'close' } });
    expect(login.status).toBe(201);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const change = (origin: string) =>
      fetch(`${gw.http}/api/devices/lbl-a`, { method: 'PATCH', headers: { cookie, origin, 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ name: 'from ' + origin }) });
    const foreign = await change('http://evil.example');
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('CROSS_ORIGIN');
    expect((await change(gw.http)).status).toBe(200);
  });
});

describe('metrics', () => {
  it('counts every management request by action and outcome', async () => {
    const res = await fetch(`${gw.http}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/gateway_device_admin_total\{action="add",result="ok"\} [1-9]/);
    expect(text).toMatch(/gateway_device_admin_total\{action="add",result="DEVICE_EXISTS"\} 1/);
    expect(text).toMatch(/gateway_device_admin_total\{action="disable",result="ok"\} 2/);
    expect(text).toMatch(/gateway_refusals_total\{code="DEVICE_DISABLED",transport="ws"\} [1-9]/);
    expect(text).toMatch(/gateway_refusals_total\{code="DEVICE_DELETED",transport="ws"\} 1/);
  });
});

describe('the device registry on disk', () => {
  it('survives kill -9: added, rotated, disabled and deleted devices stay so, over the registry file it imported', async () => {
    const dataDir = tempDir('devmgmt-kill-');
    const registry = join(tempDir('devmgmt-reg-'), 'registry.json');
    const fileToken = 'file-token-1';
    writeFileSync(registry, JSON.stringify({ devices: [{ id: 'file-1', tokenHash: hashToken(fileToken), name: 'From the file' }, { id: 'file-2', tokenHash: hashToken('file-token-2') }] }));
    const args = gatewayArgs(dataDir, '--registry', registry);
    let g = await spawnGateway(args, { GATEWAY_LOG_LEVEL: 'info' });
    let added: DeviceTokenAnswer;
    let rotated: DeviceTokenAnswer;
    try {
      added = (await g.api<DeviceTokenAnswer>('/api/devices', json('POST', { id: 'kept-1', labels: { site: 'east' } }))).body;
      rotated = (await g.api<DeviceTokenAnswer>('/api/devices/file-1/token', json('POST', { graceSeconds: 0 }))).body;
      expect((await g.api('/api/devices/file-1', json('PATCH', { labels: { site: 'west' } }))).status).toBe(200);
      expect((await g.api('/api/devices/kept-1/disable', { method: 'POST' })).status).toBe(200);
      expect((await g.api('/api/devices/file-2', { method: 'DELETE' })).status).toBe(200);
      // One log line per change, naming the device and the action; never a token. (The logger
      // writes asynchronously: wait for the lines before the kill, which would lose unwritten ones.)
      const lines = ['device kept-1: added', 'device file-1: got a new token', 'device file-1: changed', 'device kept-1: disabled', 'device file-2: deleted'];
      const log = await waitFor(() => (lines.every((l) => g.output().includes(l)) ? g.output() : undefined), 'a log line per change');
      expect(log).not.toContain(added.token);
      expect(log).not.toContain(rotated.token);
    } finally {
      // No goodbye: what was answered must be on disk already.
      await g.stop('SIGKILL');
    }
    g = await spawnGateway(args);
    try {
      const list = (await g.api<DeviceList>('/api/devices')).body.devices;
      expect(list.map((d) => d.id).sort()).toEqual(['file-1', 'kept-1']);
      expect(list.find((d) => d.id === 'kept-1')).toMatchObject({ disabled: true, labels: { site: 'east' } });
      expect(list.find((d) => d.id === 'file-1')).toMatchObject({ name: 'From the file', labels: { site: 'west' } });
      const status = async (id: string, token: string) => {
        try {
          (await RawDevice.connect(g.ws, id, token)).close();
          return 101;
        } catch (err) {
          return (err as { status: number }).status;
        }
      };
      expect(await status('kept-1', added.token)).toBe(403);
      expect(await status('file-1', fileToken)).toBe(401);
      expect(await status('file-1', rotated.token)).toBe(101);
      expect(await status('file-2', 'file-token-2')).toBe(401);
      expect((await g.api('/api/devices/kept-1/enable', { method: 'POST' })).status).toBe(200);
      expect(await status('kept-1', added.token)).toBe(101);
    } finally {
      await g.stop();
    }
  });
});
