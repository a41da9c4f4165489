/**
 * MQTT publishers (one TCP connection per device, pre-encoded PUBLISH blocks with fresh frame seqs
 * and packet ids, reading the gateway's acks) and the counting subscriber used against a plain broker.
 */
import type { Socket } from 'node:net';
import { fleetToken } from '../../../devices/token.js';
import { templateFrame } from '../frames.js';
import { connectMqtt, MQTT_TYPE, MqttPacketCounter, PublishBlock, subscribeMqtt } from '../mqtt-wire.js';
import { AckLedger } from './acks.js';
import { deviceId } from './devices.js';
import { BlockPump } from './pump.js';

export interface MqttLoadOptions {
  host: string;
  port: number;
  publishers: number;
  qos: 0 | 1;
  /** Username = client id = device id, password = its fleet token. */
  fleetKey: string;
  framesPerWrite: number;
}

export class MqttPublishers {
  readonly sockets: Socket[] = [];
  readonly pumps: BlockPump[] = [];
  /** The gateway acks over MQTT too (QoS 0 PUBLISH on the device's commands topic). */
  readonly ledger = new AckLedger();
  private readonly counters: MqttPacketCounter[] = [];

  static async connect(o: MqttLoadOptions, baseTime: number): Promise<MqttPublishers> {
    const p = new MqttPublishers();
    const conns = await Promise.all(
      Array.from({ length: o.publishers }, (_, i) => {
        const id = deviceId(i);
        return connectMqtt({ host: o.host, port: o.port, clientId: id, username: id, password: fleetToken(o.fleetKey, id) }).then((s) => ({ id, s }));
      }),
    );
    for (const { id, s } of conns) {
      s.on('error', () => {});
      let acked = 0;
      const counter = new MqttPacketCounter((payload) => {
        const seq = p.ledger.onMessage(payload, acked);
        if (seq !== undefined) acked = seq;
      });
      p.counters.push(counter);
      s.on('data', (c: Buffer) => counter.feed(c));
      const frame = templateFrame(0x5eed0000 + p.sockets.length, baseTime);
      const topic = `devices/${id}/telemetry`;
      const blocks = [new PublishBlock(topic, o.qos, frame, o.framesPerWrite), new PublishBlock(topic, o.qos, frame, o.framesPerWrite)];
      let seq = 1;
      let packetId = 1;
      p.sockets.push(s);
      p.pumps.push(
        new BlockPump(s, blocks, (b) => {
          seq = b.stamp(seq, baseTime);
          if (o.qos === 1) packetId = (b as PublishBlock).stampIds(packetId);
        }),
      );
    }
    return p;
  }

  get sent(): number {
    let n = 0;
    for (const p of this.pumps) n += p.sent;
    return n;
  }

  get pubacks(): number {
    return this.counters.reduce((n, c) => n + c.byType[MQTT_TYPE.puback]!, 0);
  }

  start(): void {
    for (const p of this.pumps) p.start();
  }

  stop(): void {
    for (const p of this.pumps) p.stop();
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/** A subscriber to every device's telemetry that counts the PUBLISH packets it gets. */
export class CountingSubscriber {
  readonly counter = new MqttPacketCounter();
  private constructor(readonly socket: Socket) {}

  static async open(host: string, port: number): Promise<CountingSubscriber> {
    const s = await connectMqtt({ host, port, clientId: 'bench-dashboard' });
    await subscribeMqtt(s, 'devices/+/telemetry', 0);
    const sub = new CountingSubscriber(s);
    s.on('data', (c: Buffer) => sub.counter.feed(c));
    s.on('error', () => {});
    return sub;
  }

  get received(): number {
    return this.counter.byType[MQTT_TYPE.publish]!;
  }

  close(): void {
    this.socket.destroy();
  }
}
