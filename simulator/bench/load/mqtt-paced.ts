/**
 * MQTT devices for the paced runs: one connection per device, one QoS 1 PUBLISH per frame (a fresh
 * packet id each, PUBACKs read and counted), and the subscriber a broker's user would run in place
 * of the gateway's dashboard, which reads the probe of every frame it gets.
 */
import type { Socket } from 'node:net';
import { fleetToken } from '../../../devices/token.js';
import { SEQ_OFFSET, STAMP_OFFSET, templateFrame, TIMESTAMP_OFFSET } from '../frames.js';
import { sourceAddress } from './source-address.js';
import { connectMqtt, MQTT_TYPE, MqttPacketCounter, PublishBlock, subscribeMqtt } from '../mqtt-wire.js';
import { deviceId } from './devices.js';
import type { LatencyRecorder } from './latency.js';
import type { PacedTarget } from './paced.js';

export class MqttPacedDevice implements PacedTarget {
  private seq = 1;
  private packetId = 1;
  private readonly block: PublishBlock;
  readonly counter = new MqttPacketCounter();

  constructor(
    readonly socket: Socket,
    id: string,
    epoch: number,
  ) {
    this.block = new PublishBlock(`devices/${id}/telemetry`, 1, templateFrame(epoch, Date.now()), 1);
    socket.on('data', (c: Buffer) => this.counter.feed(c));
    socket.on('error', () => {});
  }

  send(wall: number, probe: number): void {
    const b = this.block;
    const p = b.payloadAt[0]!;
    b.buf.writeUInt16BE(this.packetId, p - 2);
    this.packetId = this.packetId === 65535 ? 1 : this.packetId + 1;
    b.buf.writeUInt32LE(this.seq, p + SEQ_OFFSET);
    this.seq = (this.seq + 1) >>> 0;
    b.buf.writeDoubleLE(wall, p + TIMESTAMP_OFFSET);
    b.buf.writeFloatLE(probe, p + STAMP_OFFSET);
    // socket.write keeps the buffer until the kernel took it: each write gets its own copy.
    this.socket.write(Buffer.from(b.buf));
  }

  get pubacks(): number {
    return this.counter.byType[MQTT_TYPE.puback]!;
  }
}

/** Connects `count` MQTT devices, `concurrency` at a time (thousands of SYNs at once overflow the backlog). */
export async function connectMqttDevices(host: string, port: number, fleetKey: string, count: number, concurrency = 500): Promise<MqttPacedDevice[]> {
  const out: MqttPacedDevice[] = [];
  for (let start = 0; start < count; start += concurrency) {
    const batch: Promise<MqttPacedDevice>[] = [];
    for (let i = start; i < Math.min(count, start + concurrency); i++) {
      const id = deviceId(i);
      batch.push(connectMqtt({ host, port, clientId: id, username: id, password: fleetToken(fleetKey, id), keepalive: 120, localAddress: sourceAddress(host, i) }).then((s) => new MqttPacedDevice(s, id, 0x5eed0000 + i)));
    }
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** One subscriber to every device's telemetry (QoS 0), timing the probe of each frame it gets. */
export class ProbeSubscriber {
  private recvAt = 0;
  private readonly counter: MqttPacketCounter;
  private constructor(
    readonly socket: Socket,
    latency: LatencyRecorder,
  ) {
    this.counter = new MqttPacketCounter((payload) => {
      if (payload.length > STAMP_OFFSET + 4) latency.received(payload.readFloatLE(STAMP_OFFSET), this.recvAt);
    });
    socket.on('data', (c: Buffer) => {
      this.recvAt = performance.now();
      this.counter.feed(c);
    });
    socket.on('error', () => {});
  }

  static async open(host: string, port: number, latency: LatencyRecorder): Promise<ProbeSubscriber> {
    const s = await connectMqtt({ host, port, clientId: 'bench-dashboard', keepalive: 120 });
    await subscribeMqtt(s, 'devices/+/telemetry', 0);
    return new ProbeSubscriber(s, latency);
  }

  get received(): number {
    return this.counter.byType[MQTT_TYPE.publish]!;
  }

  close(): void {
    this.socket.destroy();
  }
}
