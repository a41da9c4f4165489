/**
 * Alarms end to end on a real gateway: a device frame (SDK over WebSocket) raises an alarm that
 * reaches /live, SSE, a webhook receiver (after a 500, retried) and a real MQTT subscriber; an
 * operator acknowledges and clears it through the API; it survives a restart and a kill -9; a
 * replayed frame is not evaluated again.
 */
import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alarm, AlarmMessage } from '../../devices/api/json.js';
import { encodeTelemetry } from '../../devices/codec/index.js';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { sdkDevice } from '../helpers/devices.js';
import { deviceToken, gatewayArgs, OPERATOR_TOKEN, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { LiveClient } from '../helpers/live-client.js';
import { freePort } from '../helpers/ports.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A webhook receiver answering each POST with the next status of `statuses` (the last repeats). */
async function receiver(statuses: number[]): Promise<{ url: string; bodies: AlarmMessage[] }> {
  const bodies: AlarmMessage[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text) as AlarmMessage);
      res.statusCode = statuses[Math.min(n++, statuses.length - 1)]!;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/alarms`, bodies };
}

const HOT = { id: 'hot', name: 'too hot', severity: 'critical', deviceId: 'alarm-dev-1', condition: { kind: 'above', channel: 1, threshold: 30, hysteresis: 2 } };

async function addRule(g: { api: TestGateway['api'] }, rule: unknown = HOT): Promise<void> {
  const r = await g.api('/api/alarm-rules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) });
  expect(r.status).toBe(201);
}

function post(g: { api: TestGateway['api'] }, path: string, body?: unknown) {
  return g.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

describe('alarms on a real gateway', () => {
  it('a frame raises an alarm seen on /live, SSE, the webhook (retried after a 500) and MQTT; acknowledge and clear through the API', async () => {
    const hook = await receiver([500, 200]);
    const g = await startGateway({ mqttPort: await freePort(), alarmWebhook: hook.url }, { alarms: { webhooks: { initialMs: 20, maxMs: 50 } } });
    cleanups.push(() => g.close());
    await addRule(g);

    const live = await LiveClient.connect(g.ws, OPERATOR_TOKEN);
    cleanups.push(() => live.close());
    live.send({ op: 'subscribe', streams: ['alarms'] });
    await live.waitFor((m) => m.type === 'alarm' && m.full === true, 'the full alarm list');

    const sub = mqtt.connect(`mqtt://127.0.0.1:${g.gateway.mqttPort}`, { username: '$operator', password: OPERATOR_TOKEN, clientId: 'integration-1', reconnectPeriod: 0 });
    cleanups.push(() => void sub.end(true));
    const mqttMessages: { topic: string; body: AlarmMessage }[] = [];
    sub.on('message', (topic, payload) => mqttMessages.push({ topic, body: JSON.parse(payload.toString()) as AlarmMessage }));
    await new Promise<void>((resolve, reject) => sub.once('connect', () => sub.subscribe('alarms/#', { qos: 1 }, (err, granted) => (err || granted?.[0]?.qos !== 1 ? reject(err ?? new Error(JSON.stringify(granted))) : resolve()))).once('error', reject));

    const sse = new AbortController();
    cleanups.push(() => sse.abort());
    const sseRes = await fetch(`${g.http}/api/live?alarms&token=${OPERATOR_TOKEN}`, { signal: sse.signal });
    let sseText = '';
    void (async () => {
      for await (const chunk of sseRes.body!) sseText += Buffer.from(chunk).toString();
    })().catch(() => {});

    const clients: DeviceClient[] = [];
    cleanups.push(async () => {
      for (const c of clients) await c.close().catch(() => {});
    });
    const d = sdkDevice(g.ws, 'alarm-dev-1', clients);
    await d.connect();
    d.send({ channel: 1, value: 35 }, Date.now());

    const raised = await live.waitFor((m) => m.type === 'alarm' && !m.full && m.alarms[0]?.state === 'active', 'the alarm on /live');
    const alarm = raised.alarms[0] as Alarm;
    expect(alarm).toMatchObject({ ruleId: 'hot', ruleName: 'too hot', deviceId: 'alarm-dev-1', severity: 'critical', channel: 1, value: 35 });
    expect(alarm.message).toMatch(/35 above 30/);

    await waitFor(() => hook.bodies.length >= 2, 'the webhook to be retried after its 500');
    expect(hook.bodies[0]).toEqual({ type: 'alarm', full: false, alarms: [alarm] });
    expect(hook.bodies[1]).toEqual(hook.bodies[0]);
    await waitFor(() => mqttMessages.length >= 1, 'the MQTT publish');
    expect(mqttMessages[0]).toEqual({ topic: 'alarms/alarm-dev-1', body: { type: 'alarm', full: false, alarms: [alarm] } });
    await waitFor(() => sseText.includes(`"id":"${alarm.id}"`), 'the SSE alarm event');
    expect(sseText).toMatch(/event: alarm\ndata: \{"type":"alarm","full":true,"alarms":\[\]\}/);

    // Still hot: no second alarm (one per rule and device until it clears).
    d.send({ channel: 1, value: 36 }, Date.now());
    await waitFor(() => g.gateway.alarms.evaluator.evaluated >= 2, 'the second reading to be evaluated');
    expect((await g.api('/api/alarms')).body.alarms).toHaveLength(1);

    const bad = await g.api('/api/alarms?state=bogus');
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'BAD_QUERY' } } });

    const ack = await post(g, `/api/alarms/${alarm.id}/acknowledge`, { note: 'on my way' });
    expect(ack).toMatchObject({ status: 200, body: { id: alarm.id, state: 'acknowledged' } });
    expect(ack.body.transitions.at(-1)).toMatchObject({ state: 'acknowledged', by: 'operator', note: 'on my way' });
    expect(await post(g, `/api/alarms/${alarm.id}/acknowledge`, {})).toMatchObject({ status: 409, body: { error: { code: 'ALARM_ALREADY_ACKNOWLEDGED' } } });
    await live.waitFor((m) => m.type === 'alarm' && m.alarms[0]?.state === 'acknowledged', 'the acknowledgement on /live');

    const metrics = await (await fetch(`${g.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_alarms_active\{severity="critical",state="acknowledged"\} 1/);
    expect(metrics).toMatch(/gateway_alarm_webhook_deliveries_total\{outcome="retried"\} 1/);

    const cleared = await post(g, `/api/alarms/${alarm.id}/clear`);
    expect(cleared).toMatchObject({ status: 200, body: { state: 'cleared' } });
    expect(await post(g, `/api/alarms/${alarm.id}/clear`, { note: 'again' })).toMatchObject({ status: 409, body: { error: { code: 'ALARM_ALREADY_CLEARED' } } });
    expect((await g.api('/api/alarms?state=active,acknowledged')).body.alarms).toEqual([]);
    expect((await g.api(`/api/alarms/${alarm.id}`)).body.transitions.map((t: { state: string }) => t.state)).toEqual(['active', 'acknowledged', 'cleared']);
    await waitFor(() => mqttMessages.length >= 3, 'MQTT publishes of every transition');
  });

  it('an MQTT integration ($operator) needs the operator token, reads only alarms, and may not set a will', async () => {
    const g = await startGateway({ mqttPort: await freePort() });
    cleanups.push(() => g.close());
    const url = `mqtt://127.0.0.1:${g.gateway.mqttPort}`;
    const connect = (o: mqtt.IClientOptions) => mqtt.connectAsync(url, { username: '$operator', clientId: 'integration-2', reconnectPeriod: 0, connectTimeout: 5000, ...o });
    await expect(connect({ password: 'wrong' })).rejects.toThrow(/Bad username or password/i);
    await expect(connect({ password: OPERATOR_TOKEN, will: { topic: 'devices/x/commands', payload: Buffer.from('x'), qos: 0, retain: false } })).rejects.toThrow(/Not authorized/i);
    const ok = await connect({ password: OPERATOR_TOKEN });
    cleanups.push(() => void ok.end(true));
    const granted = await ok.subscribeAsync(['alarms/#', 'alarms/climate-1'], { qos: 1 });
    expect(granted.map((x) => x.qos)).toEqual([1, 1]);
    // SUBACK 0x80 for anything else.
    await expect(ok.subscribeAsync('devices/climate-1/commands', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(ok.subscribeAsync('devices/#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
  });

  it('a replayed frame is not evaluated again; the condition ending clears by rule', async () => {
    const g = await startGateway();
    cleanups.push(() => g.close());
    await addRule(g, { ...HOT, deviceId: 'alarm-raw' });
    const dev = await RawDevice.connect(g.ws, 'alarm-raw', deviceToken('alarm-raw'));
    cleanups.push(() => dev.terminate());
    const t = Date.now();
    const hot = encodeTelemetry({ epoch: 1, seq: 1, timestamp: t }, [{ channel: 1, value: 35, type: 'f32' }]);
    dev.send(hot);
    await dev.waitAck(1, 1);
    dev.send(encodeTelemetry({ epoch: 1, seq: 2, timestamp: t + 1000 }, [{ channel: 1, value: 10, type: 'f32' }]));
    await dev.waitAck(1, 2);
    const evaluated = g.gateway.alarms.evaluator.evaluated;
    dev.send(hot);
    await waitFor(() => g.gateway.ingest.stats.duplicates === 1, 'the replay to be dropped as a duplicate');
    expect(g.gateway.alarms.evaluator.evaluated).toBe(evaluated);
    const { body } = await g.api('/api/alarms?device=alarm-raw');
    expect(body.alarms).toHaveLength(1);
    expect(body.alarms[0].transitions).toEqual([
      { state: 'active', at: expect.any(Number), by: 'rule' },
      { state: 'cleared', at: expect.any(Number), by: 'rule' },
    ]);
  });

  it('a silent device (offline too) raises its silent alarm; data clears it', async () => {
    const g = await startGateway({}, { alarms: { sweepMs: 50 } });
    cleanups.push(() => g.close());
    await addRule(g, { id: 'quiet', name: 'quiet', severity: 'warning', deviceId: 'alarm-quiet', condition: { kind: 'silent', forMs: 1000 } });
    const clients: DeviceClient[] = [];
    cleanups.push(async () => {
      for (const c of clients) await c.close().catch(() => {});
    });
    const d = sdkDevice(g.ws, 'alarm-quiet', clients);
    await d.connect();
    d.send({ channel: 1, value: 1 }, Date.now());
    await waitFor(() => g.gateway.alarms.evaluator.evaluated >= 1, 'the reading');
    await d.close();
    const alarm = await waitFor(async () => (await g.api('/api/alarms?device=alarm-quiet&state=active')).body.alarms[0], 'the silent alarm', 10_000);
    expect(alarm).toMatchObject({ ruleId: 'quiet', channel: null, value: null, severity: 'warning' });
    expect(alarm.message).toMatch(/no data for 1 s/);
    const again = sdkDevice(g.ws, 'alarm-quiet', clients);
    await again.connect();
    again.send({ channel: 1, value: 2 }, Date.now());
    await waitFor(async () => (await g.api(`/api/alarms/${alarm.id}`)).body.state === 'cleared', 'data to clear it');
  });

  it('an active alarm stays active across a restart and a kill -9; rules from the API too', async () => {
    const dataDir = tempDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const start = async (): Promise<ChildGateway> => {
      const gw = await spawnGateway(gatewayArgs(dataDir));
      cleanups.push(async () => void (await gw.stop('SIGKILL')));
      return gw;
    };
    const a = await start();
    await addRule(a, { ...HOT, deviceId: 'alarm-kill' });
    const clients: DeviceClient[] = [];
    cleanups.push(async () => {
      for (const c of clients) await c.close().catch(() => {});
    });
    const d = sdkDevice(a.ws, 'alarm-kill', clients);
    await d.connect();
    d.send({ channel: 1, value: 40 }, Date.now());
    const alarm = await waitFor(async () => (await a.api('/api/alarms?device=alarm-kill')).body.alarms[0], 'the alarm');
    await d.close();
    await a.stop('SIGKILL');

    const b = await start();
    expect((await b.api(`/api/alarms/${alarm.id}`)).body).toMatchObject({ state: 'active', value: 40 });
    expect((await b.api('/api/alarm-rules')).body.rules.map((r: { id: string }) => r.id)).toContain('hot');
    expect(await post(b, `/api/alarms/${alarm.id}/acknowledge`, { note: 'after the crash' })).toMatchObject({ status: 200 });
    await b.stop('SIGTERM');

    const c = await start();
    expect((await c.api(`/api/alarms/${alarm.id}`)).body).toMatchObject({ state: 'acknowledged' });
    // The condition ending after the restart clears it by rule.
    const d2 = sdkDevice(c.ws, 'alarm-kill', clients);
    await d2.connect();
    d2.send({ channel: 1, value: 5 }, Date.now());
    await waitFor(async () => (await c.api(`/api/alarms/${alarm.id}`)).body.state === 'cleared', 'the rule to clear it');
  });
});
