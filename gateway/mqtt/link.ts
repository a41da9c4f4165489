import type { Client } from 'aedes';
import { decodeFrame, FrameType } from '../../devices/codec/index.js';
import type { DeviceLink, OfflineCause } from '../devices.js';
import { commandsTopic, qos0Publish, qos1Publish } from './topics.js';

/** A device connected to the embedded broker, as the rest of the gateway sees it. */
export class MqttLink implements DeviceLink {
  readonly transport = 'mqtt';
  closingCause: OfflineCause | undefined;
  private readonly topic: Buffer;
  /** Command publishes the device has not PUBACKed yet: packet id → command id. */
  private readonly unacked = new Map<number, string>();
  private nextId = 0;
  /** Commands published before the CONNACK went out (the session opens first): written right after it. */
  private beforeConnack: (() => void)[] | undefined = [];

  constructor(
    readonly client: Client,
    readonly remoteAddress: string,
  ) {
    this.topic = Buffer.from(commandsTopic(client.id), 'utf8');
  }

  /** QoS 0 on the device's commands topic, written straight to its socket (acks, error frames). */
  send(bytes: Uint8Array): 'sent' | 'queued' | 'dropped' {
    const conn = this.client.conn;
    if (this.client.closed || conn.destroyed) return 'dropped';
    return conn.write(qos0Publish(this.topic, bytes)) ? 'sent' : 'queued';
  }

  /**
   * A command at QoS 1, written straight to the socket with a packet id of the link's own, so the
   * device's PUBACK names the command whatever the session (aedes names the PUBACKed packet only for
   * persistent sessions). Not kept for a resend: a command whose connection ends unacked is requeued.
   */
  publishReliable(bytes: Uint8Array, done: (err?: Error) => void): void {
    const conn = this.client.conn;
    if (this.client.closed || conn.destroyed) return done(new Error('the connection is closed'));
    if (this.beforeConnack !== undefined) {
      const copy = Uint8Array.from(bytes);
      this.beforeConnack.push(() => this.publishReliable(copy, done));
      return;
    }
    const f = decodeFrame(bytes);
    const id = this.packetId();
    if (!(f instanceof Error) && f.type === FrameType.Command) this.unacked.set(id, f.commandId);
    conn.write(qos1Publish(this.topic, bytes, id), (err) => done(err ?? undefined));
  }

  /** The CONNACK was written: nothing may reach the device before it [MQTT-3.2.0-1]. */
  connackSent(): void {
    const waiting = this.beforeConnack;
    this.beforeConnack = undefined;
    if (waiting) for (const w of waiting) w();
  }

  /** The device PUBACKed `packetId`: the command id it carried, once, or undefined. */
  pubacked(packetId: number): string | undefined {
    const c = this.unacked.get(packetId);
    this.unacked.delete(packetId);
    return c;
  }

  /** 1 … 65535, skipping ids still waiting for their PUBACK [MQTT-2.3.1-2]. */
  private packetId(): number {
    for (let i = 0; i < 65535; i++) {
      this.nextId = (this.nextId % 65535) + 1;
      if (!this.unacked.has(this.nextId)) return this.nextId;
    }
    // 65535 commands unacknowledged on one connection: the oldest id is reused (its PUBACK is lost to us).
    this.unacked.delete(this.nextId);
    return this.nextId;
  }

  /** The code the gateway closed this link for (an operator's DEVICE_DISABLED, …): the device's offlineDetail, as a WebSocket close reason is. */
  closedFor: string | undefined;

  close(_closeCode: number, reason: string): void {
    this.closedFor ??= reason;
    // MQTT 3.1.1 has no server-side close reason: the error frame written before is the reason.
    // end() lets that frame reach the device before the FIN; destroy() if the device lingers.
    const conn = this.client.conn;
    if (conn.destroyed) return;
    conn.end();
    setTimeout(() => conn.destroy(), 2000).unref();
  }

  bufferedAmount(): number {
    return this.client.conn.writableLength ?? 0;
  }
}
