/**
 * JSON telemetry through the one ingest path: a plain `mosquitto_pub -m '{"temperature":21.5}'`
 * and a plain `curl -d` device show up in GET /api/devices/{id} with their values (units from the
 * type); every refusal answers its code and loses nothing else; PUBACK and 202 wait until the
 * readings are safe; with seq, exactly once across a gateway kill -9.
 */
import { execFile, spawn } from 'node:child_process';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, ERROR_CODES, FrameType, type ErrorFrame, type Frame } from '../../devices/codec/index.js';
import { api, deviceToken, gatewayArgs, historyValues, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { readmeBlock } from '../helpers/readme.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const mosquittoPub = requireProgram('mosquitto_pub', 'mosquitto-clients');
const curl = requireProgram('curl', 'curl');

const hasInfluxd = influxdPath() !== undefined;
let influxd: Influxd | undefined;
let broker: Mosquitto | undefined;
const gws: TestGateway[] = [];
const children: ChildGateway[] = [];
const mqttClients: mqtt.MqttClient[] = [];
afterEach(async () => {
  for (const c of mqttClients.splice(0)) c.end(true);
  for (const g of gws.splice(0)) await g.close();
  for (const c of children.splice(0)) await c.stop('SIGKILL');
  influxd?.resume();
  await influxd?.destroy();
  influxd = undefined;
  await broker?.stop();
  broker = undefined;
});

/** Runs a program to its end (killed by PID after 20 s): its exit code and output. */
function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = execFile(file, args, { timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    p.stdin?.end();
  });
}

async function gatewayWithMqtt(overrides: Parameters<typeof startGateway>[0] = {}, deps: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway & { mqttPort: number }> {
  const g = await startGateway({ mqttPort: await freePort(), ackInterval: 10, ...overrides }, deps);
  gws.push(g);
  return Object.assign(g, { mqttPort: g.gateway.mqttPort });
}

/** POSTs JSON telemetry as the device (fetch; the curl test below uses the real curl). */
async function post(base: string, id: string, body: string, token = deviceToken(id)): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${base}/api/devices/${id}/telemetry`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, connection: 'close' } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** A publish's PUBACK within 10 s (a connection closed without one leaves MQTT.js waiting forever). */
function pubacked<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10_000)));
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

describe.skipIf(!mosquittoPub)('JSON telemetry over MQTT', () => {
  it('a plain mosquitto_pub of {"temperature":21.5} shows in the device record, the unit from its type', async () => {
    const g = await gatewayWithMqtt();
    const id = 'climate-0001';
    const { code, out } = await run(mosquittoPub!, ['-d', '-h', '127.0.0.1', '-p', String(g.mqttPort), '-i', id, '-u', id, '-P', deviceToken(id), '-q', '1', '-t', `devices/${id}/telemetry/json`, '-m', '{"temperature":21.5}']);
    expect(code, out).toBe(0);
    // QoS 1: mosquitto_pub exits after its PUBACK, which the gateway sends once the reading is safe.
    expect(out).toContain('received PUBACK');
    const { body } = await g.api(`/api/devices/${id}`);
    expect(body.last['1'].value).toBe(21.5);
    expect(body.counters).toMatchObject({ frames: 1, readings: 1, errors: 0 });
    const types = (await g.api('/api/device-types')).body.types;
    const ch = types.find((t: { type: string }) => t.type === body.type).channels.find((c: { id: number }) => c.id === 1);
    expect(ch).toMatchObject({ name: 'temperature', unit: '°C' });
  });

  it('answers an empty array [] (a batch of no messages) with its PUBACK and no error frame: nothing stored, no error counted', async () => {
    const g = await gatewayWithMqtt();
    const id = 'climate-0120';
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${g.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), reconnectPeriod: 0, protocolVersion: 4 });
    mqttClients.push(c);
    const errors: Frame[] = [];
    c.on('message', (_t, p) => {
      const f = decodeFrame(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
      if (!(f instanceof Error) && f.type === FrameType.Error) errors.push(f);
    });
    c.on('error', () => {});
    await c.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    await pubacked(c.publishAsync(`devices/${id}/telemetry/json`, '[]', { qos: 1 }), 'the PUBACK of []');
    // An error frame for [] would come before its PUBACK, and before the next message's.
    await pubacked(c.publishAsync(`devices/${id}/telemetry/json`, '{"temperature": 19.5}', { qos: 1 }), 'the PUBACK of the next message');
    expect(errors).toEqual([]);
    const dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.counters).toMatchObject({ frames: 1, readings: 1, errors: 0 });
    expect(dev.lastError).toBeNull();
  });

  it('refuses a bad message alone: error frame with the code on the commands topic, then its PUBACK; nothing of it stored; the connection stays and the next message is taken', async () => {
    const g = await gatewayWithMqtt();
    const cases: [string, keyof typeof ERROR_CODES, string][] = [
      ['{"temperature": 20, "pressure": 1013}', 'UNKNOWN_CHANNEL', 'pressure'],
      ['temperature=20', 'JSON_MALFORMED', 'not JSON'],
      ['{"temperature": "warm"}', 'JSON_BAD_VALUE', 'temperature'],
      ['{"seq": 1.5, "values": {"temperature": 1}}', 'JSON_BAD_FIELD', 'seq'],
      // Nothing to store: a PUBACK "accepted" would promise readings that do not exist.
      ['{}', 'JSON_BAD_FIELD', 'no readings'],
      ['[{"temperature": 1}, {"seq": 4, "values": {}}]', 'JSON_BAD_FIELD', '[1] has no readings'],
    ];
    for (const [i, [payload, code, says]] of cases.entries()) {
      const id = `climate-010${i}`;
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${g.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), reconnectPeriod: 0, protocolVersion: 4 });
      mqttClients.push(c);
      const got: Frame[] = [];
      c.on('message', (_t, p) => {
        const f = decodeFrame(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
        if (!(f instanceof Error)) got.push(f);
      });
      c.on('error', () => {});
      let closed = false;
      c.once('close', () => (closed = true));
      await c.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
      // The PUBACK comes (a client that keeps unacked messages would otherwise resend it forever).
      await pubacked(c.publishAsync(`devices/${id}/telemetry/json`, payload, { qos: 1 }), `the PUBACK of the ${code} message`);
      await waitFor(() => got.some((f) => f.type === FrameType.Error), `the error frame for ${code}`);
      const e = got.find((f): f is ErrorFrame => f.type === FrameType.Error);
      expect(e?.code, code).toBe(ERROR_CODES[code]);
      expect(e?.message, code).toContain(says);
      const before = (await g.api(`/api/devices/${id}`)).body;
      // The message is refused whole: a good reading beside the bad one is not stored either.
      expect(before.last, code).toEqual({});
      expect(before.lastError).toBe(code);
      // The same connection goes on: the next message is taken.
      await pubacked(c.publishAsync(`devices/${id}/telemetry/json`, '{"temperature": 19.5}', { qos: 1 }), 'the PUBACK of the next message');
      const after = (await g.api(`/api/devices/${id}`)).body;
      expect(after.last['1']?.value, code).toBe(19.5);
      expect(closed, code).toBe(false);
    }
    const metrics = await (await fetch(`${g.http}/metrics`)).text();
    for (const [, code] of cases) {
      const n = cases.filter(([, c]) => c === code).length;
      expect(metrics).toMatch(new RegExp(`gateway_refusals_total\\{code="${code}",transport="mqtt"\\} ${n}$`, 'm'));
    }
  });
});

describe.skipIf(!mosquittoPub || !curl || !requireProgram('openssl', 'openssl'))("README's JSON recipe", () => {
  it('runs as written (mosquitto_pub and curl) and both readings show in the device record', async () => {
    const mqttPort = await freePort();
    const gw = await spawnGateway(gatewayArgs(tempDir(), '--fleet-key', 'my-fleet-secret', '--mqtt-port', String(mqttPort)));
    children.push(gw);
    const recipe = readmeBlock('json-recipe');
    expect(recipe.match(/-p 1883 /g)).toHaveLength(1);
    expect(recipe.match(/localhost:8080/g)).toHaveLength(1);
    const script = recipe.replace('-p 1883 ', `-p ${mqttPort} `).replace('localhost:8080', `127.0.0.1:${gw.port}`);
    const out = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('bash', ['-euo', 'pipefail', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      p.stdout.on('data', (b: Buffer) => (text += b.toString()));
      p.stderr.on('data', (b: Buffer) => (text += b.toString()));
      const kill = setTimeout(() => p.kill('SIGKILL'), 20_000);
      p.once('exit', (code) => {
        clearTimeout(kill);
        resolve({ code, out: text });
      });
    });
    expect(out.code, out.out).toBe(0);
    expect(out.out).toContain('{"accepted":1,"duplicates":0}');
    const { body } = await gw.api('/api/devices/climate-0001');
    expect(body.counters.frames).toBe(2);
    expect(body.last['1'].value).toBe(21.5);
    expect(body.last['2'].value).toBe(40);
  });
});

describe.skipIf(!mosquittoPub || !mosquittoPath())('JSON telemetry in bridge mode', () => {
  it('takes JSON published to an external Mosquitto through the shared subscription, deduped by seq', async () => {
    broker = await startMosquitto();
    const g = await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'json-group', ackInterval: 10 });
    gws.push(g);
    await waitFor(() => g.gateway.readiness().checks.broker === 'ok', 'the bridge to connect');
    const id = 'climate-0090';
    const msg = JSON.stringify({ ts: 1_700_000_000_000, seq: 5, epoch: 3, values: { temperature: 18.5, humidity: 55 } });
    for (let i = 0; i < 2; i++) {
      const { code, out } = await run(mosquittoPub!, ['-h', '127.0.0.1', '-p', String(broker.port), '-i', `pub-${i}`, '-q', '1', '-t', `devices/${id}/telemetry/json`, '-m', msg]);
      expect(code, out).toBe(0);
    }
    const dev = await waitFor(async () => {
      const { body } = await g.api(`/api/devices/${id}`);
      return body?.counters?.frames === 1 && body.counters.duplicates === 1 ? body : undefined;
    }, 'the message taken once and its resend as a duplicate');
    expect(dev.last['1'].value).toBe(18.5);
    expect(dev.last['2'].value).toBe(55);
  });
});

describe('JSON telemetry over HTTP', () => {
  it.skipIf(!curl)('a plain curl -d shows in the device record: 202 {accepted, duplicates}', async () => {
    const g = await startGateway({ ackInterval: 10 });
    gws.push(g);
    const id = 'climate-0010';
    const { code, out } = await run(curl!, ['-sS', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${deviceToken(id)}`, '-d', '{"temperature":21.5,"humidity":40}', `${g.http}/api/devices/${id}/telemetry`]);
    expect(code, out).toBe(0);
    const [answer, status] = out.trim().split('\n');
    expect(status).toBe('202');
    expect(JSON.parse(answer!)).toEqual({ accepted: 1, duplicates: 0 });
    const { body } = await g.api(`/api/devices/${id}`);
    expect(body.last['1'].value).toBe(21.5);
    expect(body.last['2'].value).toBe(40);
    expect(body.online).toBe(false);
    expect(body.lastSeen).toBeGreaterThan(0);
  });

  it('takes the long form and arrays: ts as given, seq deduped, no seq never deduped; bool channels', async () => {
    const g = await startGateway({ ackInterval: 10 });
    gws.push(g);
    const id = 'vibration-0001';
    const t0 = Date.now() - 60_000;
    const msgs = [
      { ts: t0, seq: 1, epoch: 9, values: { velocity: 3.5, alarm: false } },
      { ts: new Date(t0 + 1000).toISOString(), seq: 2, epoch: 9, values: { velocity: 4.5, alarm: true } },
    ];
    expect((await post(g.http, id, JSON.stringify(msgs))).body).toEqual({ accepted: 2, duplicates: 0 });
    // The same again: duplicates, stored once.
    expect((await post(g.http, id, JSON.stringify(msgs))).body).toEqual({ accepted: 0, duplicates: 2 });
    // Without seq: taken every time (at least once).
    expect((await post(g.http, id, JSON.stringify({ ts: t0 + 2000, values: { velocity: 5 } }))).body).toEqual({ accepted: 1, duplicates: 0 });
    expect((await post(g.http, id, JSON.stringify({ ts: t0 + 2000, values: { velocity: 5 } }))).body).toEqual({ accepted: 1, duplicates: 0 });
    const { body } = await g.api(`/api/devices/${id}`);
    expect(body.counters).toMatchObject({ frames: 4, duplicates: 2, readings: 6 });
    expect(body.last['3']).toEqual({ value: true, time: t0 + 1000 });
    expect(body.epoch).toBe(9);
    expect(body.ackedSeq).toBe(2);
    expect(await historyValues(g.http, id, 1, t0, 3000)).toEqual([3.5, 4.5, 5]);
  });

  it('answers each refusal with its code and status, and loses nothing else', async () => {
    const g = await startGateway({ ackInterval: 10, httpTelemetryRate: 1000, maxFrameBytes: 1024, maxReadings: 2 });
    gws.push(g);
    const id = 'climate-0020';
    const cases: [string, string | undefined, number, string][] = [
      ['{"temperature": 21', undefined, 400, 'JSON_MALFORMED'],
      ['"hello"', undefined, 400, 'JSON_MALFORMED'],
      ['{"temperature": "warm"}', undefined, 400, 'JSON_BAD_VALUE'],
      ['{"temperature": 1e999}', undefined, 400, 'JSON_BAD_VALUE'],
      ['{"temperature": true}', undefined, 400, 'JSON_BAD_VALUE'],
      ['{"temperature": 1e39}', undefined, 400, 'JSON_BAD_VALUE'],
      ['{"pressure": 1013}', undefined, 400, 'UNKNOWN_CHANNEL'],
      ['{"ts": 1717171717000, "temperature": 1}', undefined, 400, 'UNKNOWN_CHANNEL'],
      ['{"seq": -1, "values": {"temperature": 1}}', undefined, 400, 'JSON_BAD_FIELD'],
      ['{"epoch": 3, "values": {"temperature": 1}}', undefined, 400, 'JSON_BAD_FIELD'],
      ['{"ts": "yesterday", "values": {"temperature": 1}}', undefined, 400, 'JSON_BAD_FIELD'],
      ['{"values": {"temperature": 1}, "unit": "C"}', undefined, 400, 'JSON_BAD_FIELD'],
      ['{"temperature": 1, "humidity": 2, "battery": 3}', undefined, 413, 'TOO_MANY_READINGS'],
      [JSON.stringify({ temperature: 1, pad: 'x'.repeat(2000) }), undefined, 413, 'FRAME_TOO_LARGE'],
      // A bad message anywhere in an array refuses the whole array.
      ['[{"temperature": 5}, {"temperature": null}]', undefined, 400, 'JSON_BAD_VALUE'],
      ['{"temperature": 1}', 'wrong-token', 401, 'UNAUTHORIZED'],
      ['{"temperature": 1}', '', 401, 'UNAUTHORIZED'],
    ];
    for (const [body, token, status, code] of cases) {
      const r = await post(g.http, id, body, token ?? deviceToken(id));
      expect([r.status, r.body?.error?.code], body.slice(0, 60)).toEqual([status, code]);
      expect(r.body.error.message.length, code).toBeGreaterThan(10);
    }
    const bad = await post(g.http, 'not a valid id', '{"temperature": 1}', 'x');
    expect([bad.status, bad.body.error.code]).toEqual([400, 'BAD_DEVICE_ID']);
    const get = await fetch(`${g.http}/api/devices/${id}/telemetry`, { headers: { authorization: `Bearer ${deviceToken(id)}` } });
    expect(get.status).toBe(405);
    // Nothing of the refused bodies was stored; a good one after them is.
    let dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.last).toEqual({});
    expect(dev.counters.frames).toBe(0);
    expect((await post(g.http, id, '{"temperature": 19.5}')).status).toBe(202);
    dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.last['1'].value).toBe(19.5);
    const metrics = await (await fetch(`${g.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_refusals_total\{code="JSON_BAD_VALUE",transport="http"\} 5/);
    expect(metrics).toMatch(/gateway_refusals_total\{code="UNAUTHORIZED",transport="http"\} 2/);
    expect(metrics).toMatch(/gateway_json_messages_total\{transport="http"\} 1$/m);
  });

  it('refuses a message with no readings (400 JSON_BAD_FIELD saying what is missing): {}, only ts/seq/epoch, empty values, an empty element; [] is an empty batch, 202 accepted 0', async () => {
    const g = await startGateway({ ackInterval: 10 });
    gws.push(g);
    const id = 'climate-0025';
    const ts = Date.now() - 1000;
    const cases: [string, string][] = [
      ['{}', '{"<channel>": value'],
      [JSON.stringify({ ts, seq: 1, epoch: 2 }), '"values"'],
      [JSON.stringify({ ts }), '"values"'],
      [JSON.stringify({ seq: 1, values: {} }), '"values" is empty'],
      ['[{}]', '[0] has no readings'],
      [JSON.stringify([{ temperature: 5 }, {}]), '[1] has no readings'],
      [JSON.stringify([{ seq: 7, values: { temperature: 5 } }, { seq: 8, values: {} }]), '[1] has no readings'],
    ];
    for (const [body, says] of cases) {
      const r = await post(g.http, id, body);
      expect([r.status, r.body?.error?.code], body).toEqual([400, 'JSON_BAD_FIELD']);
      expect(r.body.error.message, body).toContain('no readings');
      expect(r.body.error.message, body).toContain(says);
      expect(r.body.accepted, body).toBeUndefined();
    }
    // An empty array is a batch of no messages: answered for what it is, not counted as an error.
    expect(await post(g.http, id, '[]')).toMatchObject({ status: 202, body: { accepted: 0, duplicates: 0 } });
    // Nothing was taken (not even the good first element of an array), and the seq of the refused ones is still free.
    let dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.counters).toMatchObject({ frames: 0, readings: 0, errors: cases.length });
    expect(dev.last).toEqual({});
    expect(dev.lastError).toBe('JSON_BAD_FIELD');
    expect((await post(g.http, id, JSON.stringify({ seq: 7, values: { temperature: 5 } }))).body).toEqual({ accepted: 1, duplicates: 0 });
    dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.counters).toMatchObject({ frames: 1, readings: 1 });
    const metrics = await (await fetch(`${g.http}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`gateway_refusals_total\\{code="JSON_BAD_FIELD",transport="http"\\} ${cases.length}$`, 'm'));
  });

  it('429 RATE_LIMITED with Retry-After past --http-telemetry-rate, per device', async () => {
    const g = await startGateway({ ackInterval: 10, httpTelemetryRate: 2 });
    gws.push(g);
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 6; i++) {
      const r = await post(g.http, 'climate-0030', `{"temperature": ${i}}`);
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThanOrEqual(2);
    expect(limited?.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another device has its own budget.
    expect((await post(g.http, 'climate-0031', '{"temperature": 1}')).status).toBe(202);
  });

  it('with seq: exactly once across a gateway kill -9, the resent acked messages are duplicates', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const args = gatewayArgs(dataDir, '--port', String(port), '--ack-interval', '10');
    const first = await spawnGateway(args);
    children.push(first);
    const id = 'climate-0050';
    const base = 1_700_000_000_000;
    const N = 300;
    const KILL_AT = 200;
    const RESEND = 50;
    const message = (i: number) => JSON.stringify({ ts: base + i, seq: i, epoch: 42, values: { temperature: i } });
    /** Sends message i until a 202 (bounded): a refused connection (the gateway is down) is retried. */
    const send = async (i: number, gw: () => ChildGateway | undefined) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const r = await post(gw()?.http ?? `http://127.0.0.1:${port}`, id, message(i)).catch(() => undefined);
        if (r?.status === 202) return r.body as { accepted: number; duplicates: number };
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`message ${i} never got a 202`);
    };
    let second: ChildGateway | undefined;
    for (let i = 0; i < KILL_AT; i++) expect(await send(i, () => first)).toEqual({ accepted: 1, duplicates: 0 });
    await first.stop('SIGKILL');
    second = await spawnGateway(args);
    children.push(second);
    // The device did not hear the last answers (say): it resends them. The cursor file says they are taken.
    for (let i = KILL_AT - RESEND; i < KILL_AT; i++) expect(await send(i, () => second)).toEqual({ accepted: 0, duplicates: 1 });
    for (let i = KILL_AT; i < N; i++) expect(await send(i, () => second)).toEqual({ accepted: 1, duplicates: 0 });
    const dev = (await api(second.http, `/api/devices/${id}`)).body;
    expect(dev.counters).toMatchObject({ frames: N - KILL_AT, duplicates: RESEND, gaps: 0 });
    expect(dev.ackedSeq).toBe(N - 1);
    // The memory store died with the first process: the second holds exactly the rest, once each.
    expect(await historyValues(second.http, id, 1, base, N)).toEqual(Array.from({ length: N - KILL_AT }, (_, k) => KILL_AT + k));
  });
});

describe('JSON telemetry over MQTT across a kill -9', () => {
  it('with seq: every PUBACKed message is known to the restarted gateway; resent, each is a duplicate', { timeout: 60_000 }, async () => {
    const [port, mqttPort, dataDir] = [await freePort(), await freePort(), tempDir()];
    const args = gatewayArgs(dataDir, '--port', String(port), '--mqtt-port', String(mqttPort), '--ack-interval', '10');
    const first = await spawnGateway(args);
    children.push(first);
    const id = 'climate-0055';
    const base = 1_700_000_000_000;
    const N = 200;
    const KILL_AT = 120;
    const RESEND = 40;
    const connect = () => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: deviceToken(id), reconnectPeriod: 0, connectTimeout: 5000 });
    const publish = (c: mqtt.MqttClient, i: number) => c.publishAsync(`devices/${id}/telemetry/json`, JSON.stringify({ ts: base + i, seq: i, epoch: 77, values: { temperature: i } }), { qos: 1 });
    const c1 = await connect();
    mqttClients.push(c1);
    c1.on('error', () => {});
    // One at a time: each PUBACK is the gateway's promise that message i is safe.
    for (let i = 0; i < KILL_AT; i++) await publish(c1, i);
    await first.stop('SIGKILL');
    const second = await spawnGateway(args);
    children.push(second);
    const c2 = await connect();
    mqttClients.push(c2);
    c2.on('error', () => {});
    for (let i = KILL_AT - RESEND; i < N; i++) await publish(c2, i);
    const dev = (await api(second.http, `/api/devices/${id}`)).body;
    expect(dev.counters).toMatchObject({ frames: N - KILL_AT, duplicates: RESEND, gaps: 0 });
    expect(await historyValues(second.http, id, 1, base, N)).toEqual(Array.from({ length: N - KILL_AT }, (_, k) => KILL_AT + k));
  });
});

describe.skipIf(!hasInfluxd)('JSON telemetry with InfluxDB', () => {
  const BASE = 1_700_000_000_000;

  async function count(db: string, id: string): Promise<number> {
    const r = await influxd!.query(`SELECT count("c1") FROM "gateway"."telemetry" WHERE "device" = '${id}'`, db);
    return (r.results?.[0]?.series?.[0]?.values?.[0]?.[1] as number | undefined) ?? 0;
  }

  it('holds the PUBACK and the 202 until InfluxDB has the readings', { timeout: 60_000 }, async () => {
    influxd = await startInfluxd();
    const g = await gatewayWithMqtt({ influx: `${influxd.url}/held`, influxRetention: 'INF' });
    // Let the gateway create its database, then freeze InfluxDB: writes wait in memory, not yet safe.
    await waitFor(async () => JSON.stringify((await influxd!.query('SHOW DATABASES')).results).includes('held'), 'the database to exist');
    influxd.pause();
    const id = 'climate-0060';
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${g.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), reconnectPeriod: 0 });
    mqttClients.push(c);
    c.on('error', () => {});
    let pubacks = 0;
    c.publish(`devices/${id}/telemetry/json`, JSON.stringify({ ts: BASE, values: { temperature: 1 } }), { qos: 1 }, (err) => !err && pubacks++);
    c.publish(`devices/${id}/telemetry/json`, JSON.stringify({ ts: BASE + 1, seq: 0, epoch: 7, values: { temperature: 2 } }), { qos: 1 }, (err) => !err && pubacks++);
    let answered = 0;
    const posted = post(g.http, id, JSON.stringify({ ts: BASE + 2, values: { temperature: 3 } })).then((r) => ((answered = r.status), r));
    await waitFor(async () => (await g.api(`/api/devices/${id}`)).body.counters.frames === 3, 'the three messages taken');
    // Several ack flushes pass while InfluxDB is frozen and nothing is in the spill (far below --storage-buffer-points).
    await new Promise((r) => setTimeout(r, 300));
    expect(g.gateway.storage.health().spilledPoints).toBe(0);
    expect([pubacks, answered]).toEqual([0, 0]);
    influxd.resume();
    expect((await posted).status).toBe(202);
    await waitFor(() => pubacks === 2, 'both PUBACKs once InfluxDB took the readings', 20_000);
    expect(await count('held', id)).toBe(3);
  });

  it('ACK_TIMEOUT when the readings are not safe in time: HTTP 503 saying how many were taken, MQTT closed without PUBACK', { timeout: 60_000 }, async () => {
    influxd = await startInfluxd();
    const g = await gatewayWithMqtt({ influx: `${influxd.url}/slow`, influxRetention: 'INF' }, { jsonSafeTimeoutMs: 300 });
    await waitFor(async () => JSON.stringify((await influxd!.query('SHOW DATABASES')).results).includes('slow'), 'the database to exist');
    // Frozen: the write hangs (10 s request timeout) far past the 300 ms the answers may wait here.
    influxd.pause();
    const id = 'climate-0065';
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${g.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), reconnectPeriod: 0 });
    mqttClients.push(c);
    c.on('error', () => {});
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    let pubacked = false;
    c.publish(`devices/${id}/telemetry/json`, JSON.stringify({ ts: BASE, seq: 0, values: { temperature: 1 } }), { qos: 1 }, (err) => (pubacked = !err));
    const r = await post(g.http, id, JSON.stringify([{ ts: BASE + 1, values: { temperature: 2 } }, { ts: BASE + 2, values: { temperature: 3 } }]));
    expect([r.status, r.body.error.code, r.body.accepted]).toEqual([503, 'ACK_TIMEOUT', 2]);
    expect(r.headers.get('retry-after')).toBe('1');
    await closed;
    expect(pubacked).toBe(false);
    const metrics = await (await fetch(`${g.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_refusals_total\{code="ACK_TIMEOUT",transport="http"\} 1/);
    expect(metrics).toMatch(/gateway_refusals_total\{code="ACK_TIMEOUT",transport="mqtt"\} 1/);
    expect(metrics).toMatch(/^gateway_json_answers_timed_out_total 2$/m);
    // Taken all the same: once InfluxDB is back, every reading is stored.
    influxd.resume();
    await waitFor(async () => (await count('slow', id)) === 3, 'the three readings in InfluxDB', 30_000, 250);
  });

  it('503 STORAGE_FULL (with Retry-After and how many were taken) when storage is full; every message answered 202 or counted in accepted is stored', { timeout: 90_000 }, async () => {
    influxd = await startInfluxd();
    const db = 'full';
    const g = await startGateway({ influx: `${influxd.url}/${db}`, influxRetention: 'INF', storageBufferPoints: 100, spillMaxBytes: 65_536, ackInterval: 10, httpTelemetryRate: 0 });
    gws.push(g);
    await waitFor(async () => JSON.stringify((await influxd!.query('SHOW DATABASES')).results).includes(db), 'the database to exist');
    influxd.pause();
    const id = 'climate-0070';
    let next = 0;
    let taken = 0;
    let full: Awaited<ReturnType<typeof post>> | undefined;
    // Arrays of 200 messages (one point each) until storage refuses: room is ~1,400 points.
    for (let round = 0; round < 100 && full === undefined; round++) {
      const msgs = Array.from({ length: 200 }, (_, k) => ({ ts: BASE + next + k, values: { temperature: next + k } }));
      next += 200;
      const r = await post(g.http, id, JSON.stringify(msgs));
      if (r.status === 202) taken += r.body.accepted;
      // Taken but not confirmed in time (a write to the frozen InfluxDB hangs until its timeout): stored all the same.
      else if (r.body?.error?.code === 'ACK_TIMEOUT') taken += r.body.accepted;
      else full = r;
    }
    expect(full?.status).toBe(503);
    expect(full?.body.error.code).toBe('STORAGE_FULL');
    expect(full?.headers.get('retry-after')).toBe('1');
    taken += full?.body.accepted ?? 0;
    expect(taken).toBeGreaterThan(0);
    influxd.resume();
    // Nothing promised is lost, nothing refused was half-stored: InfluxDB ends with exactly what was taken.
    await waitFor(async () => (await count(db, id)) === taken, `${taken} points in InfluxDB`, 30_000, 250);
    await new Promise((r) => setTimeout(r, 300));
    expect(await count(db, id)).toBe(taken);
    expect(g.gateway.storage.health()).toMatchObject({ lost: 0 });
  });

  it('400 TIMESTAMP_OUT_OF_RANGE for a ts older than the retention policy, nothing of the body stored', { timeout: 60_000 }, async () => {
    influxd = await startInfluxd();
    const g = await startGateway({ influx: `${influxd.url}/retention`, influxRetention: '1h', ackInterval: 10 });
    gws.push(g);
    const id = 'climate-0080';
    const now = Date.now();
    const r = await post(g.http, id, JSON.stringify({ ts: now - 2 * 3_600_000, seq: 0, values: { temperature: 1 } }));
    expect([r.status, r.body.error.code]).toEqual([400, 'TIMESTAMP_OUT_OF_RANGE']);
    // The refused message did not use up its seq: the next one may carry it.
    expect((await post(g.http, id, JSON.stringify({ ts: now, seq: 0, values: { temperature: 2 } }))).body).toEqual({ accepted: 1, duplicates: 0 });
    const dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.last['1'].value).toBe(2);
    expect(dev.counters).toMatchObject({ frames: 1, errors: 1 });
    expect(dev.lastError).toBe('TIMESTAMP_OUT_OF_RANGE');
  });

  it('over MQTT an array refused after its first message was taken closes unacked (that message is not safe yet); one refused whole is answered', { timeout: 60_000 }, async () => {
    influxd = await startInfluxd();
    const mqttPort = await freePort();
    const g = await startGateway({ influx: `${influxd.url}/retention`, influxRetention: '1h', ackInterval: 10, mqttPort });
    gws.push(g);
    const id = 'climate-0081';
    const now = Date.now();
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: deviceToken(id), reconnectPeriod: 0, protocolVersion: 4 });
    mqttClients.push(c);
    c.on('error', () => {});
    // Refused whole (nothing taken): answered, the connection stays.
    await pubacked(c.publishAsync(`devices/${id}/telemetry/json`, JSON.stringify({ ts: now - 2 * 3_600_000, values: { temperature: 1 } }), { qos: 1 }), 'the PUBACK of the refused message');
    // The first message of this array is taken, the second is too old for the retention policy.
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    let acked = false;
    c.publish(`devices/${id}/telemetry/json`, JSON.stringify([{ ts: now, values: { temperature: 2 } }, { ts: now - 2 * 3_600_000, values: { temperature: 3 } }]), { qos: 1 }, (err) => (acked = !err));
    await pubacked(closed, 'the connection to close');
    expect(acked).toBe(false);
    const dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev.counters).toMatchObject({ frames: 1, errors: 2 });
    expect(dev.last['1'].value).toBe(2);
  });
});
