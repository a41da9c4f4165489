/**
 * The backbone between gateway instances (processes of `--workers N`, or gateways on several
 * machines): one MQTT client on a broker they all reach. It carries, under gateway/{cluster}/:
 *
 *   instances/{instance}           retained JSON {online}; the will says offline when an instance dies
 *   presence/{deviceId}            retained JSON: which instance holds the device, or why it went offline
 *   telemetry/{instance}           batches of the raw frames an instance ingested (for live views elsewhere):
 *                                  [u8 flags][u8 id length][id][u32 LE frame length][frame]…
 *   commands/{deviceId}/{id}       retained JSON command records, published by the instance owning each
 *   deliver/{instance}             frames for a device that instance holds (commands from other owners)
 *   results                        result frames that reached an instance not owning the command
 *
 * Brokers without MQTT 5's noLocal (aedes) echo our own messages back: every handler ignores what
 * this instance sent.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import { firstConnect, redact } from '../mqtt/first-connect.js';
import type { CommandRecord } from '../commands/command.js';
import type { OfflineCause } from '../devices.js';

export interface BackboneOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  ca?: Buffer | undefined;
  /** Topic namespace: instances with the same cluster name see each other. */
  cluster: string;
  /** This instance's id (topic-safe). */
  instance: string;
  /** Ingested frames are batched for this long before they go to the other instances. */
  flushMs: number;
  /** The setting the URL came from, for error messages. */
  setting: string;
}

export interface PresenceMessage {
  instance: string;
  online: boolean;
  transport: 'ws' | 'mqtt';
  remoteAddress: string;
  /** connectedAt when online, disconnectedAt when not. */
  at: number;
  cause?: OfflineCause;
  detail?: string;
  /** Where the device's frames were safe when it left, so the next instance knows its replays. */
  cursor?: { epoch: number; contig: number };
}

export type BackboneEvents = {
  /** `stale`: a retained message naming this instance, from before it (re)started. */
  presence: [deviceId: string, msg: PresenceMessage, stale: boolean];
  instance: [instance: string, online: boolean, cause: string | undefined];
  /**
   * A frame another instance ingested; `shared` when it came through the broker's shared
   * subscription rather than a connection that instance holds. Bytes are valid during the call only.
   */
  telemetry: [deviceId: string, frame: Uint8Array, shared: boolean];
  command: [record: CommandRecord];
  commandGone: [deviceId: string, commandId: string];
  deliver: [deviceId: string, frame: Uint8Array];
  result: [deviceId: string, frame: Uint8Array];
};

/** Most bytes of frames batched into one telemetry message. */
const BATCH_BYTES = 64 * 1024;
const utf8 = new TextEncoder();
const text = new TextDecoder();

type Listener<K extends keyof BackboneEvents> = (...args: BackboneEvents[K]) => void;

export class Backbone {
  private client: MqttClient | undefined;
  private readonly prefix: string;
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  private batchLength = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private closing = false;
  /** Frames replicated out and in, for metrics. */
  framesOut = 0;
  framesIn = 0;
  /** Frames not replicated because the backbone was down (live views elsewhere miss them; storage does not). */
  framesDropped = 0;
  /** Results this instance passed on to the owner of their command. */
  resultsRelayed = 0;
  /** Other instances online now: with none, ingested frames are not replicated at all. */
  readonly peers = new Set<string>();
  private readonly listeners: { [K in keyof BackboneEvents]: Listener<K>[] } = {
    presence: [],
    instance: [],
    telemetry: [],
    command: [],
    commandGone: [],
    deliver: [],
    result: [],
  };

  constructor(
    readonly opts: BackboneOptions,
    private readonly log: Logger,
  ) {
    this.prefix = `gateway/${opts.cluster}/`;
  }

  onPresence(l: Listener<'presence'>): void {
    this.listeners.presence.push(l);
  }
  onInstance(l: Listener<'instance'>): void {
    this.listeners.instance.push(l);
  }
  onTelemetry(l: Listener<'telemetry'>): void {
    this.listeners.telemetry.push(l);
  }
  onCommand(l: Listener<'command'>): void {
    this.listeners.command.push(l);
  }
  onCommandGone(l: Listener<'commandGone'>): void {
    this.listeners.commandGone.push(l);
  }
  onDeliver(l: Listener<'deliver'>): void {
    this.listeners.deliver.push(l);
  }
  onResult(l: Listener<'result'>): void {
    this.listeners.result.push(l);
  }

  get instance(): string {
    return this.opts.instance;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async start(): Promise<void> {
    const o = this.opts;
    const p = this.prefix;
    const options: IClientOptions = {
      protocolVersion: 4,
      clientId: `gw-${o.cluster}-${o.instance}`.slice(0, 128),
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      queueQoSZero: false,
      will: { topic: `${p}instances/${o.instance}`, payload: Buffer.from(JSON.stringify({ online: false, cause: 'connection_lost' })), qos: 1, retain: true },
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.ca ? { ca: o.ca } : {}),
    };
    const client = mqtt.connect(o.url, options);
    this.client = client;
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet.retain));
    client.on('error', (err) => !this.closing && this.log.warn({ err: err.message, url: redact(o.url) }, `cluster backbone error; reconnecting. Check ${o.setting} and its credentials`));
    client.on('offline', () => this.log.warn({ url: redact(o.url) }, 'cluster backbone lost its broker; other instances will not see this one until it is back'));
    client.on('connect', () => {
      client.subscribe([`${p}instances/+`, `${p}presence/+`, `${p}telemetry/+`, `${p}commands/+/+`, `${p}deliver/${o.instance}`, `${p}results`], { qos: 1 }, (err, granted) => {
        const refused = granted?.filter((g) => g.qos >= 128) ?? [];
        if (err || refused.length > 0) this.log.error({ err: err?.message, refused: refused.map((g) => g.topic) }, `the backbone broker refused subscriptions under ${p}#; let the gateway's user read and write ${p}#`);
      });
      client.publish(`${p}instances/${o.instance}`, JSON.stringify({ online: true, startedAt: Date.now() }), { qos: 1, retain: true });
      this.log.info({ url: redact(o.url), cluster: o.cluster, instance: o.instance }, 'joined the cluster backbone');
    });
    // In bridge mode the backbone is the bridge's broker and connects first: its failure is the bridge's (README).
    const code = o.setting === '--mqtt-url' ? 'MQTT_BRIDGE_CONNECT' : 'CLUSTER_CONNECT';
    await firstConnect(client, { url: o.url, code, what: o.setting === '--mqtt-url' ? 'the MQTT broker' : 'the cluster backbone', setting: o.setting });
  }

  publishPresence(deviceId: string, msg: PresenceMessage): void {
    this.client?.publish(`${this.prefix}presence/${deviceId}`, JSON.stringify(msg), { qos: 1, retain: true });
  }

  publishCommand(c: CommandRecord): void {
    this.client?.publish(`${this.prefix}commands/${c.deviceId}/${c.id}`, JSON.stringify(c), { qos: 1, retain: true });
  }

  /** Clears a finished command the owner no longer keeps (an empty retained message deletes it). */
  forgetCommand(deviceId: string, commandId: string): void {
    this.client?.publish(`${this.prefix}commands/${deviceId}/${commandId}`, Buffer.alloc(0), { qos: 1, retain: true });
  }

  /** Sends a frame to a device held by another instance. */
  deliver(instance: string, deviceId: string, frame: Uint8Array): boolean {
    if (!this.client?.connected) return false;
    this.client.publish(`${this.prefix}deliver/${instance}`, addressed(deviceId, frame), { qos: 1 });
    return true;
  }

  /** Hands a command result to whichever instance owns the command. */
  relayResult(deviceId: string, frame: Uint8Array): void {
    this.resultsRelayed++;
    this.client?.publish(`${this.prefix}results`, addressed(deviceId, frame, this.opts.instance), { qos: 1 });
  }

  /** Queues an ingested frame for the other instances; copied, so the caller may reuse the bytes. */
  replicate(deviceId: string, frame: Uint8Array, shared: boolean): void {
    if (this.peers.size === 0) return;
    if (!this.client?.connected) {
      this.framesDropped++;
      return;
    }
    const need = 2 + 128 * 3 + 4 + frame.byteLength;
    if (this.batchLength + need > this.batch.length) this.flush();
    if (need > this.batch.length) this.batch = Buffer.allocUnsafe(need);
    const b = this.batch;
    let p = this.batchLength;
    b[p] = shared ? 1 : 0;
    const idLen = b.write(deviceId, p + 2, 'utf8');
    b[p + 1] = idLen;
    p += 2 + idLen;
    b.writeUInt32LE(frame.byteLength, p);
    p += 4;
    b.set(frame, p);
    this.batchLength = p + frame.byteLength;
    this.framesOut++;
    this.flushTimer ??= setTimeout(() => this.flush(), this.opts.flushMs);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.batchLength === 0) return;
    // The client keeps the buffer until written: hand it over and start a new one.
    const out = this.batch.subarray(0, this.batchLength);
    this.batch = Buffer.allocUnsafe(BATCH_BYTES);
    this.batchLength = 0;
    // QoS 1: the other instances' counters and live views count on every frame (at QoS 0 a busy
    // broker dropped some and the views drifted from what was stored).
    this.client?.publish(`${this.prefix}telemetry/${this.opts.instance}`, out, { qos: 1 });
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    if (!topic.startsWith(this.prefix)) return;
    const rest = topic.slice(this.prefix.length);
    const slash = rest.indexOf('/');
    const kind = slash === -1 ? rest : rest.slice(0, slash);
    const arg = slash === -1 ? '' : rest.slice(slash + 1);
    try {
      switch (kind) {
        case 'telemetry':
          if (arg !== this.opts.instance) this.receiveTelemetry(payload);
          return;
        case 'presence': {
          if (payload.length === 0) return;
          const msg = JSON.parse(payload.toString('utf8')) as PresenceMessage;
          // Our own news comes back (no noLocal in MQTT 3.1.1); only a retained one is news to us.
          const stale = msg.instance === this.opts.instance;
          if (!stale || retained) for (const l of this.listeners.presence) l(arg, msg, stale);
          return;
        }
        case 'instances': {
          if (arg === this.opts.instance || payload.length === 0) return;
          const m = JSON.parse(payload.toString('utf8')) as { online?: boolean; cause?: string };
          const online = m.online === true;
          if (online) this.peers.add(arg);
          else this.peers.delete(arg);
          for (const l of this.listeners.instance) l(arg, online, m.cause);
          return;
        }
        case 'commands': {
          const [deviceId, commandId] = arg.split('/');
          if (!deviceId || !commandId) return;
          if (payload.length === 0) {
            for (const l of this.listeners.commandGone) l(deviceId, commandId);
          } else {
            const record = JSON.parse(payload.toString('utf8')) as CommandRecord;
            for (const l of this.listeners.command) l(record);
          }
          return;
        }
        case 'deliver': {
          const m = readAddressed(payload);
          if (m) for (const l of this.listeners.deliver) l(m.deviceId, m.frame);
          return;
        }
        case 'results': {
          const m = readAddressed(payload);
          if (m && m.from !== this.opts.instance) for (const l of this.listeners.result) l(m.deviceId, m.frame);
          return;
        }
      }
    } catch (err) {
      this.log.warn({ topic, err: (err as Error).message }, 'ignored a malformed backbone message; is another program publishing under gateway/#?');
    }
  }

  private receiveTelemetry(b: Buffer): void {
    let p = 0;
    while (p + 2 <= b.length) {
      const shared = b[p] === 1;
      const idLen = b[p + 1]!;
      const id = b.toString('utf8', p + 2, p + 2 + idLen);
      p += 2 + idLen;
      if (p + 4 > b.length) return;
      const len = b.readUInt32LE(p);
      p += 4;
      if (p + len > b.length) return;
      this.framesIn++;
      const frame = b.subarray(p, p + len);
      for (const l of this.listeners.telemetry) l(id, frame, shared);
      p += len;
    }
  }

  async close(): Promise<void> {
    this.flush();
    this.closing = true;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.connected) {
      await c.publishAsync(`${this.prefix}instances/${this.opts.instance}`, JSON.stringify({ online: false, cause: 'shutdown' }), { qos: 1, retain: true }).catch(() => {});
    }
    await c.endAsync();
  }
}

/** [u8 id length][id][u8 sender length][sender][frame]. */
function addressed(deviceId: string, frame: Uint8Array, from = ''): Buffer {
  const id = utf8.encode(deviceId);
  const sender = utf8.encode(from);
  const out = Buffer.allocUnsafe(2 + id.length + sender.length + frame.byteLength);
  out[0] = id.length;
  out.set(id, 1);
  out[1 + id.length] = sender.length;
  out.set(sender, 2 + id.length);
  out.set(frame, 2 + id.length + sender.length);
  return out;
}

function readAddressed(b: Buffer): { deviceId: string; from: string; frame: Uint8Array } | undefined {
  if (b.length < 2) return undefined;
  const idLen = b[0]!;
  if (b.length < 2 + idLen) return undefined;
  const fromLen = b[1 + idLen]!;
  const start = 2 + idLen + fromLen;
  if (b.length < start) return undefined;
  return { deviceId: text.decode(b.subarray(1, 1 + idLen)), from: text.decode(b.subarray(2 + idLen, start)), frame: b.subarray(start) };
}
