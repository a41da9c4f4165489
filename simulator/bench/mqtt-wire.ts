/**
 * MQTT 3.1.1 on plain TCP sockets for the load generator: CONNECT/SUBSCRIBE via mqtt-packet, PUBLISH
 * packets pre-encoded into blocks (frame payloads patched in place like the WebSocket blocks), and a
 * packet counter that walks fixed headers only.
 */
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { FrameBlock, FRAME_BYTES } from './frames.js';

export const MQTT_TYPE = { connack: 2, publish: 3, puback: 4, suback: 9 } as const;

/**
 * Counts packets by type from a byte stream without parsing them (fixed header + length varint),
 * and hands over the payload of small PUBLISH packets (the gateway's acks) when asked to.
 */
export class MqttPacketCounter {
  readonly byType = new Float64Array(16);
  private hdr: number[] = [];
  private skip = 0;
  private collect: Buffer | undefined;
  private collected = 0;
  private flags = 0;

  constructor(private readonly onSmallPublish?: (payload: Buffer) => void) {}

  feed(chunk: Buffer): void {
    let i = 0;
    const len = chunk.length;
    while (i < len) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - i);
        if (this.collect) {
          chunk.copy(this.collect, this.collected, i, i + n);
          this.collected += n;
        }
        i += n;
        this.skip -= n;
        if (this.skip === 0 && this.collect) this.publishDone();
        continue;
      }
      const b = chunk[i++]!;
      this.hdr.push(b);
      if (this.hdr.length === 1) continue;
      if (b & 0x80) {
        if (this.hdr.length > 5) throw new Error('MQTT: malformed remaining length');
        continue;
      }
      let rl = 0;
      let mul = 1;
      for (let k = 1; k < this.hdr.length; k++) {
        rl += (this.hdr[k]! & 0x7f) * mul;
        mul *= 128;
      }
      const type = this.hdr[0]! >> 4;
      this.byType[type]!++;
      this.skip = rl;
      if (this.onSmallPublish && type === MQTT_TYPE.publish && rl > 2 && rl <= 256) {
        this.collect = Buffer.allocUnsafe(rl);
        this.collected = 0;
        this.flags = this.hdr[0]! & 0x0f;
      }
      this.hdr = [];
    }
  }

  private publishDone(): void {
    const p = this.collect!;
    this.collect = undefined;
    const qos = (this.flags >> 1) & 3;
    const at = 2 + p.readUInt16BE(0) + (qos > 0 ? 2 : 0);
    if (at <= p.length) this.onSmallPublish!(p.subarray(at));
  }
}

export interface MqttLogin {
  host: string;
  port: number;
  clientId: string;
  username?: string;
  password?: string;
  keepalive?: number;
  timeoutMs?: number;
  /** The connection's source address (load/source-address.ts); default: the kernel's choice. */
  localAddress?: string;
}

/** Connects and waits for CONNACK 0; the socket is then the caller's. */
export function connectMqtt(o: MqttLogin): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: o.host, port: o.port, noDelay: true, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const timer = setTimeout(() => fail(new Error(`CONNACK for ${o.clientId} timed out`)), o.timeoutMs ?? 10_000);
    let got = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: o.clientId,
          keepalive: o.keepalive ?? 60,
          ...(o.username !== undefined ? { username: o.username } : {}),
          ...(o.password !== undefined ? { password: Buffer.from(o.password) } : {}),
        }),
      );
    });
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 4) return;
      socket.off('data', onData);
      clearTimeout(timer);
      if (got[0]! >> 4 !== MQTT_TYPE.connack || got[3] !== 0) return fail(new Error(`CONNACK for ${o.clientId}: return code ${got[3]}`));
      socket.off('error', fail);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** Subscribes and waits for the SUBACK (before any other traffic on the socket). */
export function subscribeMqtt(socket: Socket, topic: string, qos: 0 | 1): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`SUBACK for ${topic} timed out`)), 10_000);
    socket.once('data', (d: Buffer) => {
      clearTimeout(timer);
      if (d[0]! >> 4 === MQTT_TYPE.suback && d[4] !== 0x80) resolve();
      else reject(new Error(`subscription to ${topic} refused`));
    });
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] }));
  });
}

/**
 * `count` PUBLISH packets to one topic, each carrying one bench frame. For QoS 1 the packet ids sit
 * in the two bytes before each payload; `stampIds` renumbers them.
 */
export class PublishBlock extends FrameBlock {
  constructor(
    topic: string,
    readonly qos: 0 | 1,
    frame: Uint8Array,
    count: number,
  ) {
    const one = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(frame), qos, retain: false, dup: false, ...(qos ? { messageId: 1 } : {}) });
    super(one.subarray(0, one.length - FRAME_BYTES), frame, count);
  }

  /** Packet ids firstId, firstId + 1, … (1..65535, skipping 0). Returns the next id. */
  stampIds(firstId: number): number {
    let id = firstId;
    for (let i = 0; i < this.count; i++) {
      this.buf.writeUInt16BE(id, this.payloadAt[i]! - 2);
      id = id === 65535 ? 1 : id + 1;
    }
    return id;
  }
}
