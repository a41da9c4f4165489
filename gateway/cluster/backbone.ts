/**
 * The backbone between gateway instances (processes of `--workers N`, or gateways on several
 * machines): one MQTT client on a broker they all reach. It carries, under gateway/{cluster}/:
 *
 *   instances/{instance}           retained JSON {online}; the will says offline when an instance dies
 *   presence/{deviceId}            retained JSON: which instance holds the device, or why it went offline
 *   summary/{instance}             JSON: what an instance counted for the devices that changed since its last
 *                                  summary (fleet-view.ts); at most one batch per --cluster-summary-ms
 *   interest/{instance}            retained JSON: the devices that instance's live clients follow (live-relay.ts)
 *   live/{deviceId}                JSON: a device's coalesced live points, published by whoever ingested them
 *                                  while another instance is interested
 *   history/{instance}             JSON history requests to that instance (memory store: it holds the points)
 *   answers/{instance}             the answers to the history requests that instance sent
 *   commands/{deviceId}/{id}       retained JSON command records, published by the instance owning each
 *   deliver/{instance}             frames for a device that instance holds (commands from other owners)
 *   results                        result frames that reached an instance not owning the command
 *   registry/{deviceId}            retained JSON: a device's last management change (registry/store.ts
 *                                  StoredDevice: token hashes, never tokens); the newest rev wins everywhere
 *   alarms/{deviceId}/{alarmId}    retained JSON {instance, alarm}: each alarm as its owner (the instance whose
 *                                  rules raised it) last changed it; empty once the owner forgets it
 *   alarm-actions/{instance}       JSON operator actions on that instance's alarms, taken by another instance's API
 *   alarm-rules/{ruleId}           retained JSON {instance, rule}: an alarm rule added through an instance's API
 *                                  (every instance runs it on the devices it holds); {instance, deleted: true} once deleted
 *
 * No instance sees another's frames: each decodes, stores and acks only what reaches it.
 * Everything here travels at QoS 1. Brokers without MQTT 5's noLocal (aedes) echo our own messages
 * back: every handler ignores what this instance sent.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import { firstConnect, redact } from '../mqtt/first-connect.js';
import { OutageLog } from '../mqtt/outage-log.js';
import type { Alarm, AlarmRule } from '../../devices/api/json.js';
import { isAlarm } from '../alarms/alarm-book.js';
import type { CommandRecord } from '../commands/command.js';
import type { OfflineCause } from '../devices.js';
import type { StoredDevice } from '../registry/store.js';

export interface BackboneOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  ca?: Buffer | undefined;
  /** Topic namespace: instances with the same cluster name see each other. */
  cluster: string;
  /** This instance's id (topic-safe). */
  instance: string;
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
  /** Another instance's summary (JSON text, fleet-view.ts reads it). */
  summary: [instance: string, json: string];
  /** Another instance's live interest: the device ids its clients follow now. */
  interest: [instance: string, devices: string[]];
  /** Coalesced live points of a device from another instance (JSON text, live-relay.ts reads it). */
  live: [deviceId: string, json: string];
  /** A history request for this instance (JSON text, remote-history.ts reads it). */
  historyRequest: [json: string];
  historyAnswer: [json: string];
  /** The backbone came back after a loss: what other instances sent meanwhile is gone. */
  rejoined: [];
  command: [record: CommandRecord];
  commandGone: [deviceId: string, commandId: string];
  deliver: [deviceId: string, frame: Uint8Array];
  result: [deviceId: string, frame: Uint8Array];
  /** A device management change (this instance's own come back too: the registry ignores what it has). */
  registry: [change: StoredDevice];
  /** Another instance's alarm as it last changed it. */
  alarm: [instance: string, alarm: Alarm];
  alarmGone: [alarmId: string];
  /** An operator action for one of this instance's alarms (JSON text, cluster/alarm-relay.ts reads it). */
  alarmAction: [json: string];
  /** A rule another instance's API took (null: deleted). */
  alarmRule: [ruleId: string, rule: unknown | null];
};

const utf8 = new TextEncoder();
const text = new TextDecoder();

type Listener<K extends keyof BackboneEvents> = (...args: BackboneEvents[K]) => void;

export class Backbone {
  private client: MqttClient | undefined;
  private readonly prefix: string;
  private closing = false;
  /** Set once the first connection is lost, so the next one counts as a rejoin. */
  private lost = false;
  /** Device live topics subscribed now (subscribed again after a reconnect). */
  private readonly liveTopics = new Set<string>();
  /** Results this instance passed on to the owner of their command. */
  resultsRelayed = 0;
  /** Messages published on the backbone, by kind, for metrics. */
  readonly sent = { summary: 0, live: 0, history: 0 };
  /** Messages not published because the backbone was down, by kind (counted, for metrics). */
  readonly unsent = { summary: 0, live: 0, history: 0 };
  /** Other instances online now. */
  readonly peers = new Set<string>();
  /** When each other instance (online now) started: what it kept in memory before is gone. */
  readonly peerStartedAt = new Map<string, number>();
  /** When this instance started (the same after a reconnect to the broker). */
  readonly startedAt = Date.now();
  private readonly listeners: { [K in keyof BackboneEvents]: Listener<K>[] } = {
    presence: [],
    instance: [],
    summary: [],
    interest: [],
    live: [],
    historyRequest: [],
    historyAnswer: [],
    rejoined: [],
    command: [],
    commandGone: [],
    deliver: [],
    result: [],
    registry: [],
    alarm: [],
    alarmGone: [],
    alarmAction: [],
    alarmRule: [],
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
  onSummary(l: Listener<'summary'>): void {
    this.listeners.summary.push(l);
  }
  onInterest(l: Listener<'interest'>): void {
    this.listeners.interest.push(l);
  }
  onLive(l: Listener<'live'>): void {
    this.listeners.live.push(l);
  }
  onHistoryRequest(l: Listener<'historyRequest'>): void {
    this.listeners.historyRequest.push(l);
  }
  onHistoryAnswer(l: Listener<'historyAnswer'>): void {
    this.listeners.historyAnswer.push(l);
  }
  onRejoined(l: Listener<'rejoined'>): void {
    this.listeners.rejoined.push(l);
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
  onRegistry(l: Listener<'registry'>): void {
    this.listeners.registry.push(l);
  }
  onAlarm(l: Listener<'alarm'>): void {
    this.listeners.alarm.push(l);
  }
  onAlarmGone(l: Listener<'alarmGone'>): void {
    this.listeners.alarmGone.push(l);
  }
  onAlarmAction(l: Listener<'alarmAction'>): void {
    this.listeners.alarmAction.push(l);
  }
  onAlarmRule(l: Listener<'alarmRule'>): void {
    this.listeners.alarmRule.push(l);
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
    const outages = new OutageLog(client, this.log, { url: redact(o.url) }, `cluster backbone error; reconnecting every second. Check ${o.setting} and its credentials`);
    client.on('error', (err) => !this.closing && outages.error(err));
    client.on('offline', () => {
      this.lost = true;
      if (outages.lost()) this.log.warn({ url: redact(o.url) }, 'cluster backbone lost its broker; other instances will not see this one until it is back');
    });
    client.on('connect', () => {
      const outage = outages.back();
      if (outage) this.log.info({ url: redact(o.url), ...outage }, 'cluster backbone reached its broker again');
      const topics = [`${p}instances/+`, `${p}presence/+`, `${p}summary/+`, `${p}interest/+`, `${p}commands/+/+`, `${p}registry/+`, `${p}deliver/${o.instance}`, `${p}results`, `${p}history/${o.instance}`, `${p}answers/${o.instance}`, `${p}alarms/+/+`, `${p}alarm-actions/${o.instance}`, `${p}alarm-rules/+`, ...this.liveTopics];
      client.subscribe(topics, { qos: 1 }, (err, granted) => {
        const refused = granted?.filter((g) => g.qos >= 128) ?? [];
        if (err || refused.length > 0) this.log.error({ err: err?.message, refused: refused.map((g) => g.topic) }, `the backbone broker refused subscriptions under ${p}#; let the gateway's user read and write ${p}#`);
      });
      client.publish(`${p}instances/${o.instance}`, JSON.stringify({ online: true, startedAt: this.startedAt }), { qos: 1, retain: true });
      this.log.info({ url: redact(o.url), cluster: o.cluster, instance: o.instance }, 'joined the cluster backbone');
      if (this.lost) for (const l of this.listeners.rejoined) l();
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

  /** A device management change made here, for every instance (retained: instances starting later read it). */
  publishRegistry(change: StoredDevice): void {
    this.client?.publish(`${this.prefix}registry/${change.id}`, JSON.stringify(change), { qos: 1, retain: true });
  }

  /** Clears a finished command the owner no longer keeps (an empty retained message deletes it). */
  forgetCommand(deviceId: string, commandId: string): void {
    this.client?.publish(`${this.prefix}commands/${deviceId}/${commandId}`, Buffer.alloc(0), { qos: 1, retain: true });
  }

  /** An alarm this instance owns, as it is now (retained: instances joining later read it). */
  publishAlarm(a: Alarm): void {
    this.client?.publish(`${this.prefix}alarms/${a.deviceId}/${a.id}`, JSON.stringify({ instance: this.opts.instance, alarm: a }), { qos: 1, retain: true });
  }

  /** Clears an alarm the owner no longer keeps (an empty retained message deletes it). */
  forgetAlarm(deviceId: string, alarmId: string): void {
    this.client?.publish(`${this.prefix}alarms/${deviceId}/${alarmId}`, Buffer.alloc(0), { qos: 1, retain: true });
  }

  /** An alarm rule this instance's API added (null: deleted), for every instance. */
  publishAlarmRule(id: string, rule: AlarmRule | null): void {
    // A deletion stays retained as a tombstone, so an instance that was away when it happened drops the rule too.
    const payload = JSON.stringify(rule === null ? { instance: this.opts.instance, deleted: true } : { instance: this.opts.instance, rule });
    this.client?.publish(`${this.prefix}alarm-rules/${id}`, payload, { qos: 1, retain: true });
  }

  /** An operator action for an alarm `instance` owns. False when the backbone is down. */
  sendAlarmAction(instance: string, json: string): boolean {
    if (!this.client?.connected) return false;
    this.client.publish(`${this.prefix}alarm-actions/${instance}`, json, { qos: 1 });
    return true;
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

  /** One summary batch (fleet-view.ts builds it). False (counted) when the backbone is down. */
  publishSummary(json: string): boolean {
    return this.send('summary', `summary/${this.opts.instance}`, json, false);
  }

  /** The devices this instance's live clients follow now (retained: instances joining later read it). */
  publishInterest(devices: string[]): void {
    this.client?.publish(`${this.prefix}interest/${this.opts.instance}`, JSON.stringify(devices), { qos: 1, retain: true });
  }

  /** A device's coalesced live points for the instances interested in it. */
  publishLive(deviceId: string, json: string): boolean {
    return this.send('live', `live/${deviceId}`, json, false);
  }

  /** Follows a device's live topic (what other instances publish of it). */
  followLive(deviceId: string): void {
    const topic = `${this.prefix}live/${deviceId}`;
    if (this.liveTopics.has(topic)) return;
    this.liveTopics.add(topic);
    this.client?.subscribe(topic, { qos: 1 });
  }

  unfollowLive(deviceId: string): void {
    const topic = `${this.prefix}live/${deviceId}`;
    if (this.liveTopics.delete(topic)) this.client?.unsubscribe(topic);
  }

  requestHistory(instance: string, json: string): boolean {
    return this.send('history', `history/${instance}`, json, false);
  }

  answerHistory(instance: string, json: string): boolean {
    return this.send('history', `answers/${instance}`, json, false);
  }

  private send(kind: keyof Backbone['sent'], topic: string, payload: string, retain: boolean): boolean {
    if (!this.client?.connected) {
      this.unsent[kind]++;
      return false;
    }
    this.sent[kind]++;
    this.client.publish(this.prefix + topic, payload, { qos: 1, retain });
    return true;
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    if (!topic.startsWith(this.prefix)) return;
    const rest = topic.slice(this.prefix.length);
    const slash = rest.indexOf('/');
    const kind = slash === -1 ? rest : rest.slice(0, slash);
    const arg = slash === -1 ? '' : rest.slice(slash + 1);
    try {
      switch (kind) {
        case 'summary':
          if (arg !== this.opts.instance) for (const l of this.listeners.summary) l(arg, payload.toString('utf8'));
          return;
        case 'interest': {
          if (arg === this.opts.instance) return;
          const ids = payload.length === 0 ? [] : (JSON.parse(payload.toString('utf8')) as unknown);
          if (Array.isArray(ids)) for (const l of this.listeners.interest) l(arg, ids.filter((x): x is string => typeof x === 'string'));
          return;
        }
        case 'live':
          for (const l of this.listeners.live) l(arg, payload.toString('utf8'));
          return;
        case 'history':
          for (const l of this.listeners.historyRequest) l(payload.toString('utf8'));
          return;
        case 'answers':
          for (const l of this.listeners.historyAnswer) l(payload.toString('utf8'));
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
          const m = JSON.parse(payload.toString('utf8')) as { online?: boolean; cause?: string; startedAt?: number };
          const online = m.online === true;
          if (online) {
            this.peers.add(arg);
            this.peerStartedAt.set(arg, typeof m.startedAt === 'number' ? m.startedAt : Date.now());
          } else {
            this.peers.delete(arg);
            this.peerStartedAt.delete(arg);
          }
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
        case 'registry': {
          if (payload.length === 0) return;
          const change = JSON.parse(payload.toString('utf8')) as StoredDevice;
          if (typeof change?.id === 'string' && change.id === arg && typeof change.rev === 'number') for (const l of this.listeners.registry) l(change);
          return;
        }
        case 'alarms': {
          const alarmId = arg.split('/')[1];
          if (!alarmId) return;
          if (payload.length === 0) {
            for (const l of this.listeners.alarmGone) l(alarmId);
            return;
          }
          const m = JSON.parse(payload.toString('utf8')) as { instance?: unknown; alarm?: unknown };
          if (typeof m.instance !== 'string' || m.instance === this.opts.instance) return;
          if (!isAlarm(m.alarm)) throw new Error('an alarm record without id, rule, device, state or transitions');
          for (const l of this.listeners.alarm) l(m.instance, m.alarm);
          return;
        }
        case 'alarm-rules': {
          if (payload.length === 0) {
            for (const l of this.listeners.alarmRule) l(arg, null);
            return;
          }
          const m = JSON.parse(payload.toString('utf8')) as { instance?: unknown; rule?: unknown; deleted?: unknown };
          if (m.instance === this.opts.instance) return;
          for (const l of this.listeners.alarmRule) l(arg, m.deleted === true ? null : m.rule ?? null);
          return;
        }
        case 'alarm-actions':
          for (const l of this.listeners.alarmAction) l(payload.toString('utf8'));
          return;
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

  async close(): Promise<void> {
    this.closing = true;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.connected) {
      await c.publishAsync(`${this.prefix}interest/${this.opts.instance}`, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => {});
      await c.publishAsync(`${this.prefix}instances/${this.opts.instance}`, JSON.stringify({ online: false, cause: 'shutdown' }), { qos: 1, retain: true }).catch(() => {});
    }
    // Without its broker, MQTT.js would wait for the PUBACKs of what is in flight until the broker returns.
    await c.endAsync(!c.connected);
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
