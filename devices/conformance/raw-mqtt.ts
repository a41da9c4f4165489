/**
 * A bare MQTT 3.1.1 client on a TCP (or TLS) socket: packets built and read by hand, so the checks
 * can send what a library would refuse to (packet id 0, an UNSUBSCRIBE without a filter, ...).
 */
import { connect as tcp, type Socket } from 'node:net';
import { connect as tls } from 'node:tls';

export interface MqttPacket {
  type: number;
  flags: number;
  body: Buffer;
}

export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBACK = 9;
export const PINGRESP = 13;

export function packet(first: number, body: Uint8Array | number[]): Buffer {
  const b = Buffer.from(body);
  const len: number[] = [];
  let n = b.length;
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    len.push(d);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), b]);
}

export function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

export interface ConnectFields {
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  keepalive?: number;
  /** Protocol level: 4 = MQTT 3.1.1, 5 = MQTT 5 (an empty property list is added). */
  level?: number;
  /** Bytes appended after the last field (a malformed CONNECT). */
  extra?: number[];
}

export function connectPacket(c: ConnectFields): Buffer {
  const level = c.level ?? 4;
  let flags = 0x02; // clean session
  if (c.username !== undefined) flags |= 0x80;
  if (c.password !== undefined) flags |= 0x40;
  const ka = c.keepalive ?? 30;
  return packet(0x10, Buffer.concat([
    str('MQTT'),
    Buffer.from([level, flags, ka >> 8, ka & 0xff]),
    level === 5 ? Buffer.from([0]) : Buffer.alloc(0),
    str(c.clientId),
    c.username !== undefined ? str(c.username) : Buffer.alloc(0),
    c.password !== undefined ? str(c.password) : Buffer.alloc(0),
    Buffer.from(c.extra ?? []),
  ]));
}

export function publishPacket(topic: string, payload: Uint8Array, qos: 0 | 1, id: number): Buffer {
  return packet(0x30 | (qos << 1), Buffer.concat([str(topic), qos > 0 ? Buffer.from([id >> 8, id & 0xff]) : Buffer.alloc(0), Buffer.from(payload)]));
}

export function subscribePacket(id: number, filter: string, qos: number): Buffer {
  return packet(0x82, Buffer.concat([Buffer.from([id >> 8, id & 0xff]), str(filter), Buffer.from([qos])]));
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);

/** Topic and payload of a received QoS 0 or 1 PUBLISH. */
export function publishOf(p: MqttPacket): { topic: string; payload: Uint8Array; id: number } {
  const tl = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + tl).toString('utf8');
  const qos = (p.flags >> 1) & 3;
  const id = qos > 0 ? p.body.readUInt16BE(2 + tl) : 0;
  const start = 2 + tl + (qos > 0 ? 2 : 0);
  return { topic, payload: new Uint8Array(p.body.subarray(start)), id };
}

export class RawMqtt {
  readonly packets: MqttPacket[] = [];
  closed = false;
  private pending: Buffer = Buffer.alloc(0);

  private constructor(private readonly sock: Socket) {
    sock.on('data', (b: Buffer) => this.take(b));
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }

  static open(url: URL, ca: Buffer | undefined, timeoutMs: number): Promise<RawMqtt> {
    const port = Number(url.port || (url.protocol === 'mqtts:' ? 8883 : 1883));
    const host = url.hostname;
    return new Promise((resolve, reject) => {
      const sock = url.protocol === 'mqtts:' ? tls({ host, port, ca, servername: host }) : tcp(port, host);
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no TCP connection to ${url.host} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once(url.protocol === 'mqtts:' ? 'secureConnect' : 'connect', () => {
        clearTimeout(t);
        resolve(new RawMqtt(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(t);
        reject(new Error(`cannot reach the MQTT broker at ${url.host}: ${err.message}`));
      });
    });
  }

  write(b: Uint8Array): void {
    this.sock.write(b);
  }

  of(type: number): MqttPacket[] {
    return this.packets.filter((p) => p.type === type);
  }

  close(): void {
    this.sock.destroy();
  }

  private take(b: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, b]) : b;
    for (;;) {
      const p = this.pending;
      if (p.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < 5 && i < p.length; i++) {
        len += (p[i]! & 0x7f) * mul;
        mul *= 128;
        if ((p[i]! & 0x80) === 0) break;
      }
      if (i >= p.length || (p[i]! & 0x80) !== 0) return;
      const end = i + 1 + len;
      if (p.length < end) return;
      this.packets.push({ type: p[0]! >> 4, flags: p[0]! & 0x0f, body: p.subarray(i + 1, end) });
      this.pending = p.subarray(end);
    }
  }
}
