/**
 * Bridge mode: the gateway is a client of an external MQTT broker (Mosquitto, EMQX) instead of
 * embedding one. Telemetry and results come through an MQTT 5 shared subscription, so several
 * gateways split the load and each message is processed by one of them; acks and error frames go
 * back on devices/{id}/commands. The external broker authenticates devices and enforces the ACL;
 * each device seen gets a session of the session port (session/sessions.ts) admitted as
 * broker-authenticated, kept while it sends.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceLink, OfflineCause } from '../devices.js';
import type { Logger } from '../log.js';
import { Refusal } from '../session/refusals.js';
import type { DeviceSessions, Session } from '../session/sessions.js';
import { firstConnect, redact } from './first-connect.js';
import { OutageLog } from './outage-log.js';
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
  /** `done` on the broker's PUBACK; at once with an error while the bridge is down (MQTT.js would queue it offline, unbounded). */
  publishReliable(bytes: Uint8Array, done: (err?: Error) => void): void {
    if (!this.client.connected) return done(new Error('the bridge is not connected to its broker'));
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
  private readonly sessions = new Map<string, Session>();
  messages = 0;

  constructor(
    private readonly port: DeviceSessions,
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
    const outages = new OutageLog(client, this.log, { url: redact(url) }, 'MQTT bridge error; the client keeps reconnecting every second. Check --mqtt-url and the broker credentials');
    client.on('error', (err) => outages.error(err));
    client.on('offline', () => {
      if (outages.lost()) this.log.warn({ url: redact(url) }, 'MQTT bridge lost the broker; reconnecting');
    });
    client.on('connect', () => {
      const outage = outages.back();
      if (outage) this.log.info({ url: redact(url), group: shareGroup, ...outage }, 'MQTT bridge connected again');
      else this.log.info({ url: redact(url), group: shareGroup }, 'MQTT bridge connected');
      // (Re)subscribe after every connect: the session is clean.
      client.subscribe(
        [`$share/${shareGroup}/devices/+/telemetry`, `$share/${shareGroup}/devices/+/telemetry/json`, `$share/${shareGroup}/devices/+/results`],
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

  /** The device's session, admitted on its first message (the broker authenticated it). */
  private session(id: string): Session | Refusal {
    const known = this.sessions.get(id);
    // A device disabled or deleted by an operator since: admitted afresh (a disabled one is refused).
    if (known && !known.device.retired && !known.device.entry?.disabled) return known;
    if (known) {
      known.end('kicked', known.device.retired ? 'DEVICE_DELETED' : 'DEVICE_DISABLED');
      this.sessions.delete(id);
    }
    const s = this.port.admit({ transport: 'bridge', id, remote: 'via broker', credentials: 'broker' }, new BridgeLink(this.client!, id));
    if (s instanceof Refusal) return s;
    s.device.seq.sparse = true;
    this.sessions.set(id, s);
    return s;
  }

  private onMessage(topic: string, payload: Buffer): void {
    this.messages++;
    const up = parseUplink(topic);
    if (!up) {
      this.port.turnAway('MQTT_FOREIGN_TOPIC', `a message on ${topic.slice(0, 200)} reached the shared subscription`, { transport: 'bridge', remote: 'via broker' });
      return;
    }
    const s = this.session(up.id);
    if (s instanceof Refusal) return;
    const device = s.device;
    if (!device.online || device.link !== s.link) s.open();
    // A refused frame gets an error frame and is dropped: the broker holds the connection.
    if (up.kind === 'json') s.json(payload, Date.now());
    else s.frame(payload, Date.now());
  }

  private markSilentOffline(now: number): void {
    for (const s of this.sessions.values()) {
      const d = s.device;
      if (d.online && d.link === s.link && now - d.lastSeen > this.opts.idleTimeoutMs) {
        s.end('timeout', 'no message through the broker within --idle-timeout');
      }
    }
  }

  /** Publishes on the external broker at QoS 1 (alarms for integrations); `done` when the broker has it. */
  publish(topic: string, payload: Buffer, done: (err?: Error) => void): void {
    const c = this.client;
    if (!c?.connected) return done(new Error('the bridge is not connected to its broker'));
    c.publish(topic, payload, { qos: 1 }, (err) => done(err ?? undefined));
  }

  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    const c = this.client;
    this.client = undefined;
    // Without its broker, MQTT.js would wait for the PUBACKs of what is in flight until the broker
    // returns: a stop must not hang on that (unconfirmed commands stay queued for the next run).
    if (c) await c.endAsync(!c.connected);
  }
}
