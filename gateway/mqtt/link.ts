import type { Client } from 'aedes';
import type { DeviceLink, OfflineCause } from '../devices.js';
import { commandsTopic, qos0Publish } from './topics.js';

/** A device connected to the embedded broker, as the rest of the gateway sees it. */
export class MqttLink implements DeviceLink {
  readonly transport = 'mqtt';
  closingCause: OfflineCause | undefined;
  private readonly topic: Buffer;

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

  /** QoS 1 through the broker, which keeps it until the device's PUBACK (commands). */
  publishReliable(bytes: Uint8Array, done: (err?: Error) => void): void {
    this.client.publish({ cmd: 'publish', topic: commandsTopic(this.client.id), payload: Buffer.from(bytes), qos: 1, retain: false, dup: false }, done);
  }

  close(): void {
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
