/**
 * Alarms in a cluster (two gateway processes on a real Mosquitto): a rule added on B runs on A,
 * where the device is; A's alarm is listed on B; an acknowledgement on B is written by A; the
 * device moving to B and its condition ending there clears A's alarm (still one per rule and device).
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { RawDevice } from '../helpers/raw-device.js';
import { deviceToken, gatewayArgs, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;
let broker: Mosquitto | undefined;
const gateways: ChildGateway[] = [];
const raws: RawDevice[] = [];
const inProcess: TestGateway[] = [];
const mqttClients: mqtt.MqttClient[] = [];

afterEach(async () => {
  for (const c of mqttClients.splice(0)) c.end(true);
  for (const g of inProcess.splice(0)) await g.close();
  for (const d of raws.splice(0)) d.terminate();
  for (const g of gateways.splice(0)) await g.stop();
  await broker?.stop();
  broker = undefined;
});

async function instance(name: string, dir = tempDir(`alarms-${name}-`)): Promise<ChildGateway> {
  const g = await spawnGateway(gatewayArgs(dir, '--cluster-url', broker!.url, '--instance-id', name, '--mqtt-share-group', 'alarms-test'));
  gateways.push(g);
  return g;
}

const ID = 'alarm-cl-1';
const alarmsOf = async (g: ChildGateway) => (await g.api(`/api/alarms?device=${ID}`)).body.alarms as { id: string; state: string; transitions: { by: string; state: string }[] }[];

describe.skipIf(!hasMosquitto)('alarms across a cluster', () => {
  it('rules run where the device is; the alarm is listed, acknowledged and cleared from any instance', async () => {
    broker = await startMosquitto();
    const a = await instance('alarm-a');
    const b = await instance('alarm-b');
    const rule = { id: 'cl-hot', name: 'hot', severity: 'major', deviceId: ID, condition: { kind: 'above', channel: 1, threshold: 30, hysteresis: 1 } };
    expect((await b.api('/api/alarm-rules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) })).status).toBe(201);
    await waitFor(async () => (await a.api('/api/alarm-rules/cl-hot')).status === 200, 'the rule to reach A');

    const t = Date.now();
    const onA = await RawDevice.connect(a.ws, ID, deviceToken(ID));
    raws.push(onA);
    onA.send(encodeTelemetry({ epoch: 1, seq: 1, timestamp: t }, [{ channel: 1, value: 40, type: 'f32' }]));
    await onA.waitAck(1, 1);
    const [raised] = await waitFor(async () => ((await alarmsOf(b)).length === 1 ? alarmsOf(b) : undefined), "A's alarm to be listed on B");
    expect(raised!.state).toBe('active');
    expect((await alarmsOf(a))[0]!.id).toBe(raised!.id);

    const ack = await b.api(`/api/alarms/${raised!.id}/acknowledge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"note":"from B"}' });
    expect(ack).toMatchObject({ status: 200, body: { state: 'acknowledged' } });
    await waitFor(async () => (await alarmsOf(a))[0]?.state === 'acknowledged', 'A (the owner) to take the acknowledgement');

    // The device moves to B: still hot there, no second alarm; then it cools down and B clears A's alarm.
    onA.terminate();
    const onB = await RawDevice.connect(b.ws, ID, deviceToken(ID));
    raws.push(onB);
    onB.send(encodeTelemetry({ epoch: 1, seq: 2, timestamp: t + 1000 }, [{ channel: 1, value: 41, type: 'f32' }]));
    await onB.waitAck(1, 2);
    onB.send(encodeTelemetry({ epoch: 1, seq: 3, timestamp: t + 2000 }, [{ channel: 1, value: 20, type: 'f32' }]));
    await onB.waitAck(1, 3);
    await waitFor(async () => (await alarmsOf(a))[0]?.state === 'cleared', 'A to clear its alarm when B saw the condition end');
    const onBList = await waitFor(async () => ((await alarmsOf(b))[0]?.state === 'cleared' ? alarmsOf(b) : undefined), 'B to show it cleared');
    expect(onBList).toHaveLength(1);
    expect(onBList[0]!.transitions.map((x) => `${x.state}:${x.by}`)).toEqual(['active:rule', 'acknowledged:operator', 'cleared:rule']);
  });

  it('a rule deleted while an instance was away is gone there too when it comes back', async () => {
    broker = await startMosquitto();
    const a = await instance('rules-a');
    const bDir = tempDir('alarms-rules-b-');
    const b = await instance('rules-b', bDir);
    const rule = { id: 'gone-soon', name: 'x', severity: 'minor', deviceType: 'vibration', condition: { kind: 'true', channel: 3 } };
    expect((await a.api('/api/alarm-rules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) })).status).toBe(201);
    await waitFor(async () => (await b.api('/api/alarm-rules/gone-soon')).status === 200, 'the rule to reach B');
    await b.stop();
    expect((await a.api('/api/alarm-rules/gone-soon', { method: 'DELETE' })).status).toBe(200);
    const back = await instance('rules-b', bDir);
    await waitFor(async () => (await back.api('/api/alarm-rules/gone-soon')).status === 404, 'B, back, to drop the rule deleted meanwhile');
  });
});

describe.skipIf(!hasMosquitto)('alarms in bridge mode', () => {
  it('an alarm change is published on the external broker, alarms/{deviceId} at QoS 1', async () => {
    broker = await startMosquitto();
    const g = await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'alarm-bridge' });
    inProcess.push(g);
    const rule = { id: 'br-hot', name: 'hot', severity: 'warning', deviceId: 'alarm-br-1', condition: { kind: 'above', channel: 1, threshold: 30 } };
    expect((await g.api('/api/alarm-rules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) })).status).toBe(201);
    const sub = await mqtt.connectAsync(broker.url, { clientId: 'alarm-integration', reconnectPeriod: 0 });
    mqttClients.push(sub);
    const got: { topic: string; qos: number; body: { alarms: { state: string; deviceId: string }[] } }[] = [];
    sub.on('message', (topic, payload, packet) => got.push({ topic, qos: packet.qos, body: JSON.parse(payload.toString()) }));
    await sub.subscribeAsync('alarms/#', { qos: 1 });
    const dev = await mqtt.connectAsync(broker.url, { clientId: 'alarm-br-1', protocolVersion: 5, reconnectPeriod: 0 });
    mqttClients.push(dev);
    dev.publish('devices/alarm-br-1/telemetry', Buffer.from(encodeTelemetry({ epoch: 1, seq: 1, timestamp: Date.now() }, [{ channel: 1, value: 33, type: 'f32' }])), { qos: 1 });
    await waitFor(() => got.length > 0, 'the alarm on the external broker');
    expect(got[0]).toMatchObject({ topic: 'alarms/alarm-br-1', qos: 1, body: { type: 'alarm', full: false, alarms: [{ state: 'active', deviceId: 'alarm-br-1' }] } });
  });
});
