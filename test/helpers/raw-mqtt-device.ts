/**
 * A bare MQTT device for tests (MQTT.js, no SDK): publishes hand-made frames on its telemetry
 * topic at QoS 1 and records the frames the gateway sends on its commands topic.
 */
import mqtt from 'mqtt';
import { decodeFrame, type Frame } from '../../devices/codec/index.js';
import type { Closed, FrameDevice } from './raw-device.js';

export class RawMqttDevice implements FrameDevice {
  readonly received: Frame[] = [];
  readonly closed: Promise<Closed>;

  private constructor(
    readonly client: mqtt.MqttClient,
    readonly id: string,
  ) {
    client.on('message', (_topic, payload) => {
      const f = decodeFrame(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
      if (!(f instanceof Error)) this.received.push(f);
    });
    // MQTT 3.1.1 has no server close reason: the error frame before the close is the reason.
    this.closed = new Promise((resolve) => client.once('close', () => resolve({ code: undefined, reason: 'connection closed' })));
    client.on('error', () => {});
  }

  /**
   * Connects as device `id` (client id = username = id, password = token; no reconnects) and
   * subscribes to its commands topic. `protocolVersion` 5 for brokers in bridge mode.
   */
  static async connect(url: string, id: string, token: string | undefined, protocolVersion: 4 | 5 = 4): Promise<RawMqttDevice> {
    const client = await mqtt.connectAsync(url, {
      clientId: id,
      username: id,
      ...(token !== undefined ? { password: token } : {}),
      protocolVersion,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const d = new RawMqttDevice(client, id);
    await client.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    return d;
  }

  send(bytes: Uint8Array): void {
    this.client.publish(`devices/${this.id}/telemetry`, Buffer.from(bytes), { qos: 1 });
  }

  close(): void {
    this.client.end(false);
  }

  /** Closes the socket without DISCONNECT, as a device that loses power. */
  terminate(): void {
    this.client.end(true);
  }
}
