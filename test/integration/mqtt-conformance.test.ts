/**
 * MQTT 3.1.1 cases where the server MUST close the connection, sent as raw bytes to the embedded
 * broker (plain aedes 1.2 keeps several of these open). Every refusal is counted and leaves other
 * devices alone.
 */
import { connect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import type { RefusalCode } from '../../gateway/session/refusals.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway;
let bystander: mqtt.MqttClient;
let bystanderSeq = 0;
beforeAll(async () => {
  gw = await startGateway({ mqttPort: await freePort(), maxFrameBytes: 1024 });
  bystander = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, { clientId: 'calm', username: 'calm', password: deviceToken('calm'), protocolVersion: 4, reconnectPeriod: 0 });
});
afterAll(async () => {
  bystander.end(true);
  await gw.close();
});

interface Raw {
  socket: Socket;
  received: Buffer[];
  closed: Promise<void>;
}

function raw(): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(gw.gateway.mqttPort, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (b) => received.push(b));
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, received, closed }));
    socket.once('error', reject);
  });
}

function connectPacket(over: Record<string, unknown> = {}): Buffer {
  const id = (over.clientId as string | undefined) ?? 'dev-c';
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: id, username: id, password: Buffer.from(deviceToken(id)), ...over } as mqttPacket.IConnectPacket);
}

/** Replaces the first occurrence of `marker` (ASCII) in `buf` with `bytes` of the same length. */
function patch(buf: Buffer, marker: string, bytes: number[]): Buffer {
  const i = buf.indexOf(marker);
  if (i === -1) throw new Error(`no ${marker} in packet`);
  const out = Buffer.from(buf);
  bytes.forEach((b, k) => (out[i + k] = b));
  return out;
}

async function expectClosed(r: Raw, code: RefusalCode | undefined, what: string): Promise<void> {
  const counted = () => (code ? gw.gateway.sessions.refusals.get(code, 'mqtt') : 0);
  const before = counted();
  await Promise.race([r.closed, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: connection still open after 3 s`)), 3000))]);
  if (code) await waitFor(() => counted() > before, `${code} counted`);
  // The bystander device is unaffected.
  await bystander.publishAsync('devices/calm/telemetry', Buffer.from(encodeTelemetry({ epoch: 5, seq: bystanderSeq++, timestamp: 1 + bystanderSeq }, [{ channel: 1, value: 1 }])), { qos: 1 });
}

async function connected(): Promise<Raw> {
  const r = await raw();
  r.socket.write(connectPacket());
  await waitFor(() => r.received.length > 0, 'CONNACK');
  expect(r.received[0]![0]).toBe(0x20);
  expect(r.received[0]![3]).toBe(0);
  return r;
}

describe('MQTT 3.1.1 must-close cases on the embedded broker', () => {
  it('a byte stream that is not MQTT', async () => {
    const r = await raw();
    r.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await expectClosed(r, 'MQTT_NOT_MQTT', 'HTTP bytes');
  });

  it('U+0000 in the client id', async () => {
    const r = await raw();
    r.socket.write(connectPacket({ clientId: 'a\u0000b', username: 'a\u0000b' }));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'NUL client id');
    expect(r.received).toEqual([]); // closed without a CONNACK
  });

  it('ill-formed UTF-8 in the user name', async () => {
    const r = await raw();
    r.socket.write(patch(connectPacket({ username: 'dev-cXX' }), 'XX', [0xc3, 0x28]));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'bad UTF-8 user name');
  });

  it('an encoded surrogate (ED A0 80) in the will topic', async () => {
    const r = await raw();
    r.socket.write(patch(connectPacket({ will: { topic: 'devices/dev-c/XXX', payload: Buffer.from('x'), qos: 0, retain: false } }), 'XXX', [0xed, 0xa0, 0x80]));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'surrogate in will topic');
  });

  it('Will QoS 3', async () => {
    const r = await raw();
    const p = connectPacket({ will: { topic: 'devices/dev-c/status', payload: Buffer.from('offline'), qos: 0, retain: false } });
    // Connect flags are the byte after the protocol level: set both will QoS bits.
    const flagsAt = p.indexOf('MQTT') + 5;
    p[flagsAt] = p[flagsAt]! | 0x18;
    r.socket.write(p);
    await expectClosed(r, undefined, 'will QoS 3');
  });

  it('an empty client id without a clean session gets CONNACK 2, then the connection closes', async () => {
    const r = await raw();
    // By hand: MQTT clients refuse to build it. Flags 0xc0 = user name + password, clean session 0.
    const body = [0, 4, ...Buffer.from('MQTT'), 4, 0xc0, 0, 30, 0, 0, 0, 1, 0x78, 0, 1, 0x79];
    r.socket.write(Buffer.from([0x10, body.length, ...body]));
    await expectClosed(r, 'DEVICE_ID_MISSING', 'empty id, clean 0');
    expect(Buffer.concat(r.received).subarray(0, 4)).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x02]));
  });

  it('U+0000 in a PUBLISH topic name', async () => {
    const r = await connected();
    r.socket.write(mqttPacket.generate({ cmd: 'publish', topic: 'devices/dev-c/telemetry\u0000', payload: Buffer.alloc(0), qos: 0, dup: false, retain: false }));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'NUL topic');
  });

  it('ill-formed UTF-8 in a SUBSCRIBE topic filter', async () => {
    const r = await connected();
    const sub = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/dev-c/XX', qos: 1 }] } as mqttPacket.ISubscribePacket);
    r.socket.write(patch(sub, 'XX', [0xff, 0xfe]));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'bad UTF-8 filter');
  });

  it('a PUBACK the broker never asked for', async () => {
    const r = await connected();
    r.socket.write(Buffer.from([0x40, 0x02, 0x12, 0x34]));
    await expectClosed(r, 'MQTT_UNSOLICITED_PUBACK', 'unsolicited PUBACK');
  });

  it('a malformed PUBACK (remaining length 3)', async () => {
    const r = await connected();
    r.socket.write(Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00]));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'PUBACK of length 3');
  });

  it('a packet over the size limit, refused from its header before the body arrives', async () => {
    const r = await connected();
    // A PUBLISH announcing 1 MiB: only the fixed header is sent.
    r.socket.write(Buffer.from([0x30, 0x80, 0x80, 0x40]));
    await expectClosed(r, 'MQTT_PACKET_TOO_LARGE', 'oversized PUBLISH');
  });

  it('a second CONNECT', async () => {
    const r = await connected();
    r.socket.write(connectPacket());
    await expectClosed(r, undefined, 'second CONNECT');
  });

  it('reserved flag bits in a SUBSCRIBE fixed header', async () => {
    const r = await connected();
    const sub = mqttPacket.generate({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'devices/dev-c/commands', qos: 1 }] } as mqttPacket.ISubscribePacket);
    sub[0] = 0x80; // must be 0x82
    r.socket.write(sub);
    await expectClosed(r, undefined, 'SUBSCRIBE flags');
  });

  it('keeps the well-behaved device\'s data through all of it', async () => {
    await waitFor(async () => (await gw.api('/api/devices/calm')).body.counters.frames === bystanderSeq, 'every bystander frame ingested');
    expect((await gw.api('/api/devices/calm')).body).toMatchObject({ online: true, counters: { errors: 0 } });
  });
});
