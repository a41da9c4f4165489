/**
 * What the embedded broker holds for one client, bounded and visible: QoS 2 PUBLISHes a device never
 * releases (PUBREL), and messages queued for an offline persistent session (clean=false).
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import type { GatewayConfig } from '../../gateway/config.js';
import type { EmbeddedBroker } from '../../gateway/mqtt/embedded.js';
import { deviceToken, OPERATOR_TOKEN, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

interface LogLine {
  level: number;
  msg: string;
  code?: string;
}

let gw: TestGateway | undefined;
const clients: mqtt.MqttClient[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const s of sockets.splice(0)) s.destroy();
  await gw?.close();
  gw = undefined;
});

async function start(over: Partial<GatewayConfig> = {}): Promise<{ g: TestGateway; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  gw = await startGateway({ mqttPort: await freePort(), logLevel: 'info', ...over }, { log: pino({ level: 'info' }, stream) });
  return { g: gw, lines };
}

async function metric(g: TestGateway, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${g.http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('QoS 2 PUBLISHes never released', () => {
  it('a device that never sends PUBREL is closed as MQTT_QOS2_UNRELEASED: counted, logged with what to do, against the device', async () => {
    const { g, lines } = await start();
    const id = 'qos2-hoarder';
    const socket = connect(g.gateway.mqttPort, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => {});
    const received: Buffer[] = [];
    socket.on('data', (b) => received.push(b));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: id, username: id, password: Buffer.from(deviceToken(id)) } as mqttPacket.IConnectPacket));
    await waitFor(() => received.length > 0, 'CONNACK');
    // aedes keeps up to 1,000 QoS 2 packets awaiting PUBREL; the 1,001st closes the connection.
    const N = 1001;
    const packets: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const frame = Buffer.from(encodeTelemetry({ epoch: 1, seq: i, timestamp: 1_700_000_000_000 + i }, [{ channel: 0, value: i }]));
      packets.push(mqttPacket.generate({ cmd: 'publish', topic: `devices/${id}/telemetry`, payload: frame, qos: 2, messageId: i + 1, dup: false, retain: false }));
    }
    socket.write(Buffer.concat(packets));
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('the connection is still open 10 s after 1,001 unreleased QoS 2 PUBLISHes')), 10_000))]);
    await waitFor(() => g.gateway.sessions.refusals.get('MQTT_QOS2_UNRELEASED', 'mqtt') === 1, 'the refusal counted');
    const line = await waitFor(() => lines.find((l) => l.code === 'MQTT_QOS2_UNRELEASED'), 'the log line');
    expect(line.level).toBe(40);
    expect(line.msg).toMatch(/PUBREL/);
    expect(line.msg).toMatch(/QoS 1/);
    expect(await metric(g, 'gateway_refusals_total\\{code="MQTT_QOS2_UNRELEASED",transport="mqtt"\\}')).toBe(1);
    const dev = (await g.api(`/api/devices/${id}`)).body;
    expect(dev).toMatchObject({ online: false, lastError: 'MQTT_QOS2_UNRELEASED' });
  });
});

describe('an offline persistent $operator session', () => {
  it('keeps at most --mqtt-max-queued alarm messages (the oldest), drops the newer ones, counts them and logs once', async () => {
    const LIMIT = 5;
    const N = 12;
    const { g, lines } = await start({ mqttMaxQueued: LIMIT });
    const broker = (g.gateway as unknown as { mqtt: EmbeddedBroker }).mqtt;
    const aedesClients = (broker as unknown as { broker: { clients: Record<string, unknown> } }).broker.clients;
    const publish = (topic: string, text: string) => new Promise<void>((resolve, reject) => broker.publish(topic, Buffer.from(text), (err) => (err ? reject(err) : resolve())));
    const url = `mqtt://127.0.0.1:${g.gateway.mqttPort}`;
    const opts = { clientId: 'pager-bridge', username: '$operator', password: OPERATOR_TOKEN, protocolVersion: 4 as const, clean: false, reconnectPeriod: 0, connectTimeout: 5000 };

    const first = await mqtt.connectAsync(url, opts);
    clients.push(first);
    const seenOnline: string[] = [];
    first.on('message', (_t, p) => seenOnline.push(p.toString()));
    await first.subscribeAsync('alarms/#', { qos: 1 });
    // Online, nothing is held back: more than the limit reaches it.
    for (let i = 0; i < LIMIT + 2; i++) await publish('alarms/freezer-1', `online-${i}`);
    await waitFor(() => seenOnline.length === LIMIT + 2, 'every message while online');
    await first.endAsync();
    await waitFor(() => aedesClients['pager-bridge'] === undefined, 'the broker to see the session offline');

    for (let i = 0; i < N; i++) await publish('alarms/freezer-1', `offline-${i}`);
    expect(await metric(g, 'gateway_mqtt_queue_dropped_total')).toBe(N - LIMIT);
    expect(lines.filter((l) => l.level === 40 && l.msg.includes('--mqtt-max-queued'))).toHaveLength(1);

    // Listening before the CONNACK: the queue follows it at once.
    const again = mqtt.connect(url, opts);
    clients.push(again);
    const seen: string[] = [];
    again.on('message', (_t, p) => seen.push(p.toString()));
    again.on('error', () => {});
    await waitFor(() => again.connected, 'the session to reconnect');
    // Online again: a message published now is delivered too (not held back by the bound).
    await publish('alarms/freezer-1', 'marker');
    const queued = () => seen.filter((m) => m.startsWith('offline-'));
    await waitFor(() => seen.includes('marker') && queued().length >= LIMIT, 'the queued messages and the marker');
    // The oldest LIMIT, in order; the queue held no more than that (N - LIMIT were dropped at enqueue).
    expect(queued()).toEqual(Array.from({ length: LIMIT }, (_, i) => `offline-${i}`));
    expect(await metric(g, 'gateway_mqtt_queue_dropped_total')).toBe(N - LIMIT);
  });
});
