/**
 * Bridge mode: the gateway is a client of an external MQTT broker (Mosquitto, EMQX) instead of
 * embedding one. Telemetry and results come through an MQTT 5 shared subscription, so several
 * gateways split the load and each message is processed by one of them; acks and error frames go
 * back on devices/{id}/commands. The external broker authenticates devices and enforces the ACL.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { encodeError } from '../../devices/codec/index.js';
import { DEVICE_ID_PATTERN, type Authenticator } from '../auth.js';
import type { DeviceLink, DeviceState, DeviceTable, OfflineCause } from '../devices.js';
import type { Ingest } from '../ingest.js';
import type { Logger } from '../log.js';
import type { Presence } from '../presence.js';
import { firstConnect, redact } from './first-connect.js';
import { commandsTopic, parseUplink } from './topics.js';

export interface BridgeOptions {
  url: string;
  username?: string;
  password?: string;
  shareGroup: string;
  /** CA to trust for an mqtts:// broker with a private CA. */
  ca?: Buffer | undefined;
  /** A device silent this long is marked offline (the broker, not the gateway, holds its connection). */
  idleTimeoutMs: number;
}

/** A bridged device: reachable only through the external broker. */
class BridgeLink implements DeviceLink {
  readonly transport = 'mqtt';
  readonly remoteAddress = 'via broker';
  readonly shared = true;
  closingCause: OfflineCause | undefined;
  private readonly topic: string;
  constructor(
    private readonly client: MqttClient,
    id: string,
  ) {
    this.topic = commandsTopic(id);
  }
  send(bytes: Uint8Array): 'sent' | 'queued' | 'dropped' {
    if (!this.client.connected) return 'dropped';
    // The bytes may be a reused buffer: the MQTT client keeps what it is given until written.
    this.client.publish(this.topic, Buffer.from(bytes), { qos: 0 });
    return 'sent';
  }
  publishReliable(bytes: Uint8Array, done: (err?: Error) => void): void {
    this.client.publish(this.topic, Buffer.from(bytes), { qos: 1 }, (err) => done(err ?? undefined));
  }
  /** The broker owns the device's connection; the gateway cannot close it. */
  close(): void {}
  bufferedAmount(): number {
    return 0;
  }
}

export class MqttBridge {
  private client: MqttClient | undefined;
  private sweep: NodeJS.Timeout | undefined;
  private readonly links = new Map<string, BridgeLink>();
  messages = 0;

  constructor(
    private readonly devices: DeviceTable,
    private readonly auth: Authenticator,
    private readonly ingest: Ingest,
    private readonly presence: Presence,
    private readonly log: Logger,
    private readonly opts: BridgeOptions,
  ) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async start(): Promise<void> {
    const { url, username, password, shareGroup } = this.opts;
    const client = mqtt.connect(url, {
      protocolVersion: 5,
      clientId: `gateway-${shareGroup}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      username,
      password,
      clean: true,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // Nothing is queued while disconnected: devices resend what was not acked.
      queueQoSZero: false,
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => this.log.warn({ err: err.message, url: redact(url) }, 'MQTT bridge error; the client keeps reconnecting. Check --mqtt-url and the broker credentials'));
    client.on('offline', () => this.log.warn({ url: redact(url) }, 'MQTT bridge lost the broker; reconnecting'));
    client.on('connect', () => {
      this.log.info({ url: redact(url), group: shareGroup }, 'MQTT bridge connected');
      // (Re)subscribe after every connect: the session is clean.
      client.subscribe(
        [`$share/${shareGroup}/devices/+/telemetry`, `$share/${shareGroup}/devices/+/results`],
        { qos: 1 },
        (err, granted) => {
          const refused = granted?.filter((g) => g.qos >= 128) ?? [];
          if (err || refused.length > 0) {
            this.log.error({ err: err?.message, refused }, 'the broker refused the shared subscriptions; does it speak MQTT 5 and allow $share? (Mosquitto ≥ 2, EMQX)');
          }
        },
      );
    });
    await firstConnect(client, { url, code: 'MQTT_BRIDGE_CONNECT', what: 'the MQTT broker', setting: '--mqtt-url' });
    this.sweep = setInterval(() => this.markSilentOffline(Date.now()), Math.min(5000, this.opts.idleTimeoutMs));
  }

  private link(device: DeviceState): BridgeLink {
    let l = this.links.get(device.id);
    if (!l) {
      l = new BridgeLink(this.client!, device.id);
      this.links.set(device.id, l);
    }
    return l;
  }

  private onMessage(topic: string, payload: Buffer): void {
    this.messages++;
    const up = parseUplink(topic);
    if (!up || !DEVICE_ID_PATTERN.test(up.id)) {
      this.ingest.stats.countError('MQTT_FOREIGN_TOPIC');
      return;
    }
    const device = this.devices.getOrCreate(up.id, this.auth.entry(up.id));
    device.seq.sparse = true;
    const link = this.link(device);
    if (!device.online || device.link !== link) this.presence.connect(device, link);
    const refusal = this.ingest.handle(device, payload, Date.now());
    if (refusal) {
      // The device cannot be disconnected from here: tell it, count it, drop the frame.
      link.send(encodeError({ timestamp: Date.now(), epoch: refusal.epoch, seq: refusal.seq }, { code: refusal.code, message: refusal.message.slice(0, 1024) }));
    }
  }

  private markSilentOffline(now: number): void {
    for (const [id, link] of this.links) {
      const d = this.devices.get(id);
      if (d?.online && d.link === link && now - d.lastSeen > this.opts.idleTimeoutMs) {
        this.presence.disconnect(d, link, 'timeout', 'no message through the broker within --idle-timeout');
      }
    }
  }

  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync();
  }
}
