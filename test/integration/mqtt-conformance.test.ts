/**
 * MQTT 3.1.1 cases where the server MUST close the connection, sent as raw bytes to the embedded
 * broker (plain aedes 1.2 keeps several of these open). Every refusal is counted and leaves other
 * devices alone.
 */
import { connect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame, encodeTelemetry, FrameType } from '../../devices/codec/index.js';
import type { RefusalCode } from '../../gateway/session/refusals.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
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

  it('a PUBLISH to a topic deeper than the broker takes (over 100 levels) is a foreign topic', async () => {
    const r = await connected();
    r.socket.write(mqttPacket.generate({ cmd: 'publish', topic: 'devices/dev-c/telemetry' + '/x'.repeat(120), payload: Buffer.from([1]), qos: 0, dup: false, retain: false }));
    await expectClosed(r, 'MQTT_FOREIGN_TOPIC', 'a 123-level topic');
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

/** A packet from its first byte and body (remaining length encoded here). */
function packet(first: number, body: number[]): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    len.push(d);
  } while (n > 0);
  return Buffer.from([first, ...len, ...body]);
}
const str = (s: string): number[] => {
  const b = Buffer.from(s, 'utf8');
  return [b.length >> 8, b.length & 0xff, ...b];
};
/** A CONNECT by hand: user name = client id, password = its token (Mosquitto ignores both). */
function rawConnect(id: string, o: { name?: string; level?: number; flags?: number; first?: number; extra?: number[] } = {}): Buffer {
  return packet(o.first ?? 0x10, [...str(o.name ?? 'MQTT'), o.level ?? 4, (o.flags ?? 0x02) | 0xc0, 0, 30, ...str(id), ...str(id), ...str(deviceToken(id)), ...(o.extra ?? [])]);
}

type Outcome = 'closed' | 'connack 1, closed' | 'open';
interface Case {
  name: string;
  /** Sent after an accepted CONNECT (CONNACK 0) when true; else these bytes open the connection. */
  afterConnect: boolean;
  bytes: Buffer;
  want: Outcome;
  code?: string;
}

// Issue 15 point 10: the packets MQTT 3.1.1 says must close the connection (each closed by
// Mosquitto too, which the last block checks), and the MQTT 3.1 CONNECT bits 3.1 leaves unused.
const cases: Case[] = [
  { name: 'UNSUBSCRIBE with no topic filter (a2 02 04 d2)', afterConnect: true, bytes: Buffer.from('a20204d2', 'hex'), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'UNSUBSCRIBE with U+0000 in the filter', afterConnect: true, bytes: packet(0xa2, [0, 5, ...str('a\u0000b')]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'UNSUBSCRIBE with ill-formed UTF-8 (c3 28) in the filter', afterConnect: true, bytes: packet(0xa2, [0, 5, 0, 2, 0xc3, 0x28]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'UNSUBSCRIBE with an invalid filter (a+)', afterConnect: true, bytes: packet(0xa2, [0, 5, ...str('a+')]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'UNSUBSCRIBE with an invalid filter (a/#/b)', afterConnect: true, bytes: packet(0xa2, [0, 5, ...str('a/#/b')]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'UNSUBSCRIBE with an empty filter', afterConnect: true, bytes: packet(0xa2, [0, 5, 0, 0]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'UNSUBSCRIBE with packet id 0', afterConnect: true, bytes: packet(0xa2, [0, 0, ...str('a/b')]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'SUBSCRIBE with packet id 0', afterConnect: true, bytes: packet(0x82, [0, 0, ...str('devices/dev-c/commands'), 1]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'PUBREC with packet id 0', afterConnect: true, bytes: Buffer.from('50020000', 'hex'), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'PUBREL with packet id 0', afterConnect: true, bytes: Buffer.from('62020000', 'hex'), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'PUBCOMP with packet id 0', afterConnect: true, bytes: Buffer.from('70020000', 'hex'), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'QoS 2 PUBLISH with packet id 0', afterConnect: true, bytes: packet(0x34, [...str('devices/dev-c/telemetry'), 0, 0, 1]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'PUBLISH to a topic name with "+" (devices/dev-c/+)', afterConnect: true, bytes: packet(0x30, [...str('devices/dev-c/+'), 1]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'PUBLISH to a topic name with "#" (devices/dev-c/#)', afterConnect: true, bytes: packet(0x30, [...str('devices/dev-c/#'), 1]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'PUBLISH to an empty topic name', afterConnect: true, bytes: packet(0x30, [0, 0, 1]), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'CONNECT with 2 bytes after its last field', afterConnect: false, bytes: rawConnect('dev-x', { extra: [9, 9] }), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'CONNECT with protocol level 6', afterConnect: false, bytes: rawConnect('dev-x', { level: 6 }), want: 'connack 1, closed', code: 'MQTT_UNSUPPORTED_PROTOCOL' },
  { name: 'CONNECT "MQTT" with level 3', afterConnect: false, bytes: rawConnect('dev-x', { level: 3 }), want: 'connack 1, closed', code: 'MQTT_UNSUPPORTED_PROTOCOL' },
  { name: 'CONNECT "MQIsdp" with level 4', afterConnect: false, bytes: rawConnect('dev-x', { name: 'MQIsdp', level: 4 }), want: 'connack 1, closed', code: 'MQTT_UNSUPPORTED_PROTOCOL' },
  { name: 'MQTT 3.1.1 CONNECT with connect-flags bit 0 set', afterConnect: false, bytes: rawConnect('dev-x', { flags: 0x03 }), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'MQTT 3.1.1 CONNECT with header flags 0x2', afterConnect: false, bytes: rawConnect('dev-x', { first: 0x12 }), want: 'closed', code: 'MQTT_MALFORMED_PACKET' },
  { name: 'MQTT 3.1 CONNECT with connect-flags bit 0 set (3.1 leaves it unused)', afterConnect: false, bytes: rawConnect('dev-31a', { name: 'MQIsdp', level: 3, flags: 0x03 }), want: 'open' },
  { name: 'MQTT 3.1 CONNECT with header flags 0x2 (unused in 3.1)', afterConnect: false, bytes: rawConnect('dev-31b', { name: 'MQIsdp', level: 3, first: 0x12 }), want: 'open' },
];

async function outcome(port: number, c: Case): Promise<{ outcome: Outcome; received: Buffer }> {
  const r = await rawTo(port);
  if (c.afterConnect) {
    r.socket.write(rawConnect('dev-c'));
    await waitFor(() => Buffer.concat(r.received).length >= 4, 'CONNACK');
    expect(Buffer.concat(r.received).subarray(0, 4)).toEqual(Buffer.from([0x20, 2, 0, 0]));
    r.received.length = 0;
  }
  r.socket.write(c.bytes);
  // A closing case must close; an open one must answer a PINGREQ after its CONNACK.
  if (c.want === 'open') r.socket.write(Buffer.from([0xc0, 0]));
  const got = await Promise.race([
    r.closed.then(() => 'closed' as const),
    waitFor(() => Buffer.concat(r.received).includes(Buffer.from([0xd0, 0])), 'PINGRESP', 5000).then(() => 'open' as const),
  ]).catch(() => 'neither' as const);
  r.socket.destroy();
  const received = Buffer.concat(r.received);
  if (got === 'open') return { outcome: 'open', received };
  if (got === 'neither') throw new Error(`${c.name}: neither closed nor answering within 5 s`);
  return { outcome: received.equals(Buffer.from([0x20, 2, 0, 1])) ? 'connack 1, closed' : 'closed', received };
}

function rawTo(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (b) => received.push(b));
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, received, closed }));
    socket.once('error', reject);
  });
}

describe('MQTT 3.1.1 must-close rules for every packet type (raw sockets)', () => {
  for (const c of cases) {
    it(`${c.name}: ${c.want}`, async () => {
      const before = c.code ? gw.gateway.ingest.stats.errorsByCode.get(c.code) ?? 0 : 0;
      const { outcome: got, received } = await outcome(gw.gateway.mqttPort, c);
      expect(got).toBe(c.want);
      if (c.want === 'closed') expect(received.subarray(0, 4).equals(Buffer.from([0x20, 2, 0, 0])), 'closed without CONNACK 0').toBe(false);
      if (c.want === 'open') expect(received.subarray(0, 4)).toEqual(Buffer.from([0x20, 2, 0, 0]));
      if (c.code) expect(gw.gateway.ingest.stats.errorsByCode.get(c.code) ?? 0).toBe(before + 1);
    });
  }

  it('a QoS 1 PUBLISH of a valid frame with packet id 0 closes and is not ingested', async () => {
    const id = 'pid-zero';
    const r = await rawTo(gw.gateway.mqttPort);
    r.socket.write(rawConnect(id));
    await waitFor(() => Buffer.concat(r.received).length >= 4, 'CONNACK');
    const frame = encodeTelemetry({ epoch: 9, seq: 1, timestamp: 1_700_000_000_000 }, [{ channel: 1, value: 1 }]);
    r.socket.write(packet(0x32, [...str(`devices/${id}/telemetry`), 0, 0, ...frame]));
    await expectClosed(r, 'MQTT_MALFORMED_PACKET', 'QoS 1 packet id 0');
    expect(Buffer.concat(r.received).subarray(4)).toEqual(Buffer.alloc(0)); // no PUBACK, no ack frame
    expect((await gw.api(`/api/devices/${id}`)).body.counters.frames).toBe(0);
  });
});

const hasMosquitto = mosquittoPath() !== undefined;
describe.skipIf(!hasMosquitto)('the same raw cases against a real Mosquitto (the reference for these rules)', () => {
  let mosq: Mosquitto;
  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => {
    await mosq?.stop();
  });
  for (const c of cases) {
    it(`${c.name}: ${c.want}`, async () => {
      expect((await outcome(mosq.port, c)).outcome).toBe(c.want);
    });
  }
});

// PROTOCOL.md "MQTT": the decisions a device maker relies on (issue 15 points 7 and 9).
describe('MQTT choices the spec writes down', () => {
  async function device(id: string): Promise<{ c: mqtt.MqttClient; acks: number[] }> {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), protocolVersion: 4, reconnectPeriod: 0 });
    const acks: number[] = [];
    c.on('message', (_t, p) => {
      const f = decodeFrame(new Uint8Array(p));
      if (!(f instanceof Error) && f.type === FrameType.Ack) acks.push(f.seq);
    });
    await c.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    return { c, acks };
  }
  const frame = (seq: number) => Buffer.from(encodeTelemetry({ epoch: 3, seq, timestamp: 1_700_000_000_000 + seq }, [{ channel: 1, value: seq }]));
  async function retained(): Promise<unknown[]> {
    const persistence = (gw.gateway as unknown as { mqtt: { broker: { persistence: { createRetainedStream(p: string): AsyncIterable<unknown> } } } }).mqtt.broker.persistence;
    const list: unknown[] = [];
    for await (const p of persistence.createRetainedStream('#')) list.push(p);
    return list;
  }

  it('QoS 0 telemetry is stored and acked like QoS 1', async () => {
    const { c, acks } = await device('qos0');
    await c.publishAsync('devices/qos0/telemetry', frame(0), { qos: 0 });
    await waitFor(() => acks.includes(0), 'the ack of a QoS 0 frame');
    c.end(true);
  });

  it('the type byte decides: a telemetry frame on the results topic is taken as telemetry', async () => {
    const { c, acks } = await device('on-results');
    await c.publishAsync('devices/on-results/results', frame(0), { qos: 1 });
    await waitFor(() => acks.includes(0), 'the ack');
    expect((await gw.api('/api/devices/on-results')).body.counters.frames).toBe(1);
    c.end(true);
  });

  it('the retain flag is ignored: the frame is taken, no retained copy is kept', async () => {
    const { c, acks } = await device('retainer');
    await c.publishAsync('devices/retainer/telemetry', frame(0), { qos: 1, retain: true });
    await waitFor(() => acks.includes(0), 'the ack');
    expect(await retained()).toEqual([]);
    c.end(true);
  });

  /** Connects `id` with `will`, drops the TCP connection (the broker then publishes the will), and returns what the broker published. */
  async function dropWithWill(id: string, will: { topic: string; qos: 0 | 1 | 2; retain: boolean }): Promise<{ retain: boolean; qos: number }> {
    const broker = (gw.gateway as unknown as { mqtt: { broker: import('node:events').EventEmitter } }).mqtt.broker;
    let published: { retain: boolean; qos: number } | undefined;
    const on = (p: { topic: string; retain: boolean; qos: number }) => {
      if (p.topic === will.topic) published = { retain: p.retain, qos: p.qos };
    };
    broker.on('publish', on);
    try {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), protocolVersion: 4, reconnectPeriod: 0, will: { ...will, payload: Buffer.from('gone') } });
      c.stream.destroy(); // an unclean end: the broker publishes the will
      await waitFor(() => published, `the will on ${will.topic} to be published`, 5000);
      c.end(true);
      return published!;
    } finally {
      broker.off('publish', on);
    }
  }

  it('a QoS 1 will of a device whose connection drops is published; the drop shows as connection_lost, not as bad input', async () => {
    // A will has no packet id: it was taken for a QoS 1 PUBLISH with packet id 0, counted as
    // MQTT_MALFORMED_PACKET against the device (offline "kicked") and never published.
    const before = gw.gateway.sessions.refusals.get('MQTT_MALFORMED_PACKET', 'mqtt');
    expect(await dropWithWill('willer-1', { topic: 'devices/willer-1/status', qos: 1, retain: false })).toMatchObject({ qos: 1 });
    const dev = await waitFor(async () => {
      const { body } = await gw.api('/api/devices/willer-1');
      return body.online === false ? body : undefined;
    }, 'willer-1 offline');
    expect(dev).toMatchObject({ offlineCause: 'connection_lost', lastError: null, counters: { errors: 0 } });
    expect(gw.gateway.sessions.refusals.get('MQTT_MALFORMED_PACKET', 'mqtt')).toBe(before);
  });

  it('a will is published without its retain flag: no device can read it back, so a copy would only pile up', async () => {
    // A device reconnecting with a fresh retained will topic each time grew the broker's memory
    // without bound (up to 64 KiB a will).
    expect(await dropWithWill('willer-2', { topic: 'devices/willer-2/status/1', qos: 0, retain: true })).toMatchObject({ retain: false });
    expect(await retained()).toEqual([]);
  });
});
