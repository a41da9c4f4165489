/**
 * The live fan-out. It hears ingest, presence and the command service (listen()); every flush it publishes one
 * coalesced message per changed device stream and one fleet delta on uWS topics, so sending to
 * many browsers is uWS's native publish. Clients over their send budget are unsubscribed until
 * they catch up, then told how many messages they missed. Ingest never waits on any of this.
 *
 * Adaptive flush: what was quiet for a whole interval (a device stream, or a device in the fleet
 * view) goes out at the next loop turn, so a reading reaches the dashboard at once; what changes
 * again within `flushMs` waits for the interval's flush, coalesced and downsampled. So a device
 * stream gets at most one message per interval plus one after a quiet spell, and a device's summary
 * is in at most one fleet delta per interval plus one: the work between intervals is proportional
 * to what changed after a quiet spell, and the interval's flush to what changed within it, never
 * to the devices or streams known. `flushMs` stays the upper bound.
 */
import { randomUUID } from 'node:crypto';
import type { Alarm, AlarmMessage, CommandMessage, GatewayStats, MissedMessage, StatsMessage, TypesMessage } from '../../devices/api/json.js';
import { deviceTypes, type DeviceTypeSpec } from '../../devices/device-types.js';
import type { TelemetryBatch, FrameHeader } from '../../devices/codec/index.js';
import type { CommandRecord } from '../commands/command.js';
import type { DeviceState, DeviceTable } from '../devices.js';
import { DeviceStreams, type Relayed } from './device-streams.js';
import { FleetSnapshots } from './fleet-snapshot.js';
import { JsonBytes } from './json-bytes.js';
import { writeSummary } from './summary-bytes.js';

export interface LiveOptions {
  flushMs: number;
  maxPointsPerChannel: number;
  replay: number;
  /** About the most bytes of messages kept for resume over all device streams. */
  replayBytes?: number;
  budgetBytes: number;
}

/** What the hub needs of a live client's connection. */
export interface LiveConn {
  /** JSON text, as a string or as UTF-8 bytes (valid during the call). */
  send(text: string | Uint8Array): 'sent' | 'queued' | 'dropped';
  bufferedAmount(): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Closes with 1001 (going away) at shutdown. */
  close(): void;
}

export interface LiveClient {
  conn: LiveConn;
  streams: Set<string>;
  congested: boolean;
  /** Topic message counts when the client went congested, to count what it missed. */
  missedFrom: Map<string, number>;
  missedDirect: number;
  /**
   * Bytes of the last fleet snapshot sent to it, while they may still wait: a snapshot is one
   * message of every device (~0.8 KB each), over the budget from about 1,300 devices on, and
   * counting it would make the client congested by its own snapshot, then caught up with the next
   * one, over and over.
   */
  snapshotBytes?: number;
}

export type StatsSource = () => GatewayStats;

/**
 * Gets every message for a topic, to send to its subscribers (uWS publish): JSON text, as a string
 * or as UTF-8 bytes that are only valid during the call (the fleet view's deltas).
 */
export type PublishListener = (topic: string, text: string | Uint8Array) => void;

/** What the hub hears; each source is optional. */
export interface LiveSources {
  ingest?: { onTelemetry(l: (device: DeviceState, header: FrameHeader, batch: TelemetryBatch) => void): void };
  presence?: { onConnect(l: (device: DeviceState) => void): void; onDisconnect(l: (device: DeviceState) => void): void };
  commands?: { onChange(l: (c: CommandRecord) => void): void };
  /** Devices whose shown state changed without a local event (cluster summaries, fleet-view.ts). */
  fleet?: { onChange(l: (device: DeviceState) => void): void };
  /** The device types file was reloaded (gateway/types/types-file.ts). */
  types?: { onChange(l: (types: readonly DeviceTypeSpec[]) => void): void };
  /** Alarm changes shown here (this instance's and the cluster's), and the alarms not cleared. */
  alarms?: { onShown(l: (a: Alarm) => void): void; openAlarms(): Alarm[] };
}

/** A device's live points ingested here, coalesced for one flush (what live-relay.ts passes on). */
export type LocalPointsListener = (id: string, points: Relayed) => void;
/** Local clients started (`true`) or stopped following a device. */
export type InterestListener = (id: string, watching: boolean) => void;

/** Something that wants each device message as it is built (Server-Sent Events). */
export type DeviceMessageSink = (id: string, seq: number, json: string) => void;

export class LiveHub {
  /** Changes at every gateway start, so clients know their remembered seqs are void. */
  readonly bootId = randomUUID();
  readonly streams: DeviceStreams;
  readonly clients = new Set<LiveClient>();
  /** Devices changed since they were last in a delta: the interval's flush sends them. */
  private readonly fleetDirty = new Set<DeviceState>();
  /** Of those, the ones that were quiet (in no delta in the last interval or two): the next loop turn sends them. */
  private readonly fleetSoon: DeviceState[] = [];
  /** Devices in a delta since the last interval's flush, and in the interval before: not quiet. */
  private fleetSent = new Set<DeviceState>();
  private fleetSentBefore = new Set<DeviceState>();
  /** Clients following `fleet` (and `stats`): with none, nothing is built for them at all. */
  private fleetWatchers = 0;
  private statsWatchers = 0;
  private readonly topicCounts = new Map<string, number>();
  /** The buffer fleet deltas are written into, reused by each. */
  private readonly fleetText = new JsonBytes();
  /** Full snapshots for clients that begin following `fleet` (they join the topic when theirs goes out). */
  private readonly snapshots: FleetSnapshots<LiveClient>;
  private timer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  /** A flush at the next loop turn is scheduled. */
  private soon: NodeJS.Immediate | undefined;
  private readonly sinks: DeviceMessageSink[] = [];
  /** Messages not sent to a client because it was over its budget. */
  dropped = 0;
  private readonly publishListeners: PublishListener[] = [];
  private readonly latencyListeners: ((seconds: number) => void)[] = [];
  private readonly localPointsListeners: LocalPointsListener[] = [];
  private readonly interestListeners: InterestListener[] = [];
  /** Local clients (WebSocket and SSE) per followed device. */
  private readonly localWatchers = new Map<string, number>();
  private openAlarms: () => Alarm[] = () => [];
  private readonly alarmListeners: ((a: Alarm) => void)[] = [];

  constructor(
    private readonly devices: DeviceTable,
    private readonly stats: StatsSource,
    readonly opts: LiveOptions,
  ) {
    this.streams = new DeviceStreams(opts.maxPointsPerChannel, opts.replay, opts.replayBytes, opts.flushMs);
    this.snapshots = new FleetSnapshots(devices, (clients, snapshot, since) => this.snapshotReady(clients, snapshot, since));
  }

  start(): void {
    this.timer = setInterval(() => this.flush(Date.now()), this.opts.flushMs);
    // Built only for someone: a gateway nobody watches does nothing here.
    this.statsTimer = setInterval(() => this.statsWatchers > 0 && this.publish('stats', JSON.stringify({ type: 'stats', stats: this.stats() } satisfies StatsMessage)), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.timer = this.soon = undefined;
    this.snapshots.stop();
    if (this.statsTimer) clearInterval(this.statsTimer);
    for (const c of this.clients) c.conn.close();
  }

  /** Subscribes to what the hub shows: new readings, presence changes, command changes. */
  listen(from: LiveSources): void {
    from.ingest?.onTelemetry((device, h, batch) => {
      this.streams.add(device, h, batch);
      this.touch(device);
      if (this.streams.soonCount > 0) this.flushNextTurn();
    });
    from.presence?.onConnect((device) => this.touch(device));
    from.presence?.onDisconnect((device) => this.touch(device));
    from.commands?.onChange((c) => this.command(c));
    from.fleet?.onChange((device) => this.touch(device));
    from.types?.onChange(() => this.typesChanged());
    if (from.alarms) {
      const alarms = from.alarms;
      this.openAlarms = () => alarms.openAlarms();
      alarms.onShown((a) => this.alarm(a));
    }
  }

  /** Each alarm change as it is shown (Server-Sent Events). */
  onAlarm(l: (a: Alarm) => void): void {
    this.alarmListeners.push(l);
  }

  /** Alarms are rare and each change matters: one message per change, not coalesced. */
  private alarm(a: Alarm): void {
    this.publish('alarms', JSON.stringify({ type: 'alarm', full: false, alarms: [a] } satisfies AlarmMessage));
    for (const l of this.alarmListeners) l(a);
  }

  /** Every alarm not cleared, for a new subscriber of `alarms`. */
  alarmSnapshot(): string {
    return JSON.stringify({ type: 'alarm', full: true, alarms: this.openAlarms() } satisfies AlarmMessage);
  }

  /** Open alarms now (SSE's first `alarm` event). */
  alarmsOpen(): Alarm[] {
    return this.openAlarms();
  }

  /** The types message of the types in force: what a `types` subscriber gets first. */
  typesMessage(): string {
    return JSON.stringify({ type: 'types', types: deviceTypes() } satisfies TypesMessage);
  }

  /**
   * New types: their followers get them, and every device goes in the next fleet delta, since a
   * device's type may have come or gone with the file (its id's prefix).
   */
  private typesChanged(): void {
    this.publish('types', this.typesMessage());
    for (const d of this.devices.all()) this.touch(d);
  }

  /** The points of each device message ingested here (not those relayed from another instance). */
  onLocalPoints(l: LocalPointsListener): void {
    this.localPointsListeners.push(l);
  }

  /** Local clients begin or end following a device (the first one came, the last one left). */
  onInterest(l: InterestListener): void {
    this.interestListeners.push(l);
  }

  /** A local client (WebSocket or SSE) follows a device's stream. */
  watchDevice(id: string): void {
    const n = this.localWatchers.get(id) ?? 0;
    this.localWatchers.set(id, n + 1);
    this.streams.watch(id);
    if (n === 0) for (const l of this.interestListeners) l(id, true);
  }

  unwatchDevice(id: string): void {
    const n = this.localWatchers.get(id);
    if (n === undefined) return;
    if (n > 1) this.localWatchers.set(id, n - 1);
    else this.localWatchers.delete(id);
    this.streams.unwatch(id, Date.now());
    if (n === 1) for (const l of this.interestListeners) l(id, false);
  }

  /** Devices local clients follow now. */
  watchedDevices(): IterableIterator<string> {
    return this.localWatchers.keys();
  }

  /** Points another instance ingested for a device followed here: they join its next message. */
  relayed(id: string, points: Relayed): void {
    this.streams.addRelayed(id, points.points, points.downsampled, Date.now());
    if (this.streams.soonCount > 0) this.flushNextTurn();
  }

  onDeviceMessage(sink: DeviceMessageSink): void {
    this.sinks.push(sink);
  }

  /** Every message published on a topic (the server sends it to the topic's subscribers). */
  onPublish(l: PublishListener): void {
    this.publishListeners.push(l);
  }

  /** How long each device message's oldest point waited before going out (seconds). */
  onLatency(l: (seconds: number) => void): void {
    this.latencyListeners.push(l);
  }

  /**
   * A device's state changed (readings, presence): it goes in the next fleet delta, at the next loop
   * turn when it was quiet, else in the interval's. Nobody on the fleet view: nothing to do.
   */
  touch(device: DeviceState): void {
    if (this.fleetWatchers === 0 || this.fleetDirty.has(device)) return;
    this.fleetDirty.add(device);
    if (this.fleetSent.has(device) || this.fleetSentBefore.has(device)) return;
    this.fleetSoon.push(device);
    this.flushNextTurn();
  }

  private flushNextTurn(): void {
    if (this.soon === undefined && this.timer !== undefined) this.soon = setImmediate(this.flushSoon);
  }

  /** The next-loop-turn flush: the streams and fleet devices that were quiet for an interval. */
  private readonly flushSoon = (): void => {
    this.soon = undefined;
    this.flush(Date.now(), false);
  };

  command(c: CommandRecord): void {
    this.publish('commands', JSON.stringify({ type: 'command', command: c } satisfies CommandMessage));
  }

  /**
   * A device stream's messages after `afterSeq`, or undefined when they cannot be replayed. `bootId`
   * names the process that numbered the client's seqs: another one (a restart, another worker or
   * cluster instance) numbers the same device's messages differently, so it answers too_old.
   */
  replay(deviceId: string, afterSeq: number, bootId: string | undefined): string[] | undefined {
    if (bootId !== undefined && bootId !== this.bootId) return undefined;
    return this.streams.since(deviceId, afterSeq);
  }

  /** Sends straight to one client, respecting its budget. */
  sendTo(c: LiveClient, text: string | Uint8Array): void {
    if (c.congested || c.conn.send(text) === 'dropped') {
      c.missedDirect++;
      this.dropped++;
    }
  }

  /** Fleet snapshots written since start (one serves every client that asked while it was written). */
  get fleetSnapshotsBuilt(): number {
    return this.snapshots.built;
  }

  subscribe(c: LiveClient, stream: string): void {
    if (c.streams.has(stream)) {
      // Asking for the fleet again is how a client gets a fresh snapshot: while it is congested it
      // gets one when it catches up, so this one counts as missed.
      if (stream === 'fleet') {
        if (!c.congested) this.snapshots.request(c);
        else {
          c.missedDirect++;
          this.dropped++;
        }
      }
      return;
    }
    c.streams.add(stream);
    if (stream === 'fleet') this.fleetWatchers++;
    if (stream === 'stats') this.statsWatchers++;
    // `fleet` starts with a snapshot, and the topic is joined when it goes out (fleet-snapshot.ts).
    // A congested client gets both when it catches up (recover()).
    if (!c.congested) {
      if (stream === 'fleet') this.snapshots.request(c);
      else c.conn.subscribe(stream);
    }
    if (stream.startsWith('device:')) this.watchDevice(stream.slice(7));
  }

  unsubscribe(c: LiveClient, stream: string): void {
    if (!c.streams.delete(stream)) return;
    if (stream === 'fleet') {
      this.snapshots.drop(c);
      if (--this.fleetWatchers === 0) this.forgetFleet();
    }
    if (stream === 'stats') this.statsWatchers--;
    if (!c.congested) c.conn.unsubscribe(stream);
    if (stream.startsWith('device:')) this.unwatchDevice(stream.slice(7));
  }

  remove(c: LiveClient): void {
    for (const s of [...c.streams]) this.unsubscribe(c, s);
    this.clients.delete(c);
  }

  private publish(topic: string, text: string | Uint8Array): void {
    this.topicCounts.set(topic, (this.topicCounts.get(topic) ?? 0) + 1);
    for (const l of this.publishListeners) l(topic, text);
  }

  /** `full` (the interval's flush): everything pending; else (the next loop turn's) what was quiet. */
  flush(now: number, full = true): void {
    const messages = full ? this.streams.flush(now) : this.streams.flushSoon(now);
    const fleet = full ? this.fleetDirty.size : this.fleetSoon.length;
    // Stops sending to a client over budget first; bringing one back (a fleet snapshot) waits for the
    // interval's flush or the client's drain. Between intervals, only when there is something to send.
    if (full || messages.length > 0 || fleet > 0) this.checkBudgets(full);
    for (const m of messages) {
      this.publish(`device:${m.id}`, m.json);
      for (const l of this.latencyListeners) l(m.waitedMs / 1000);
      for (const sink of this.sinks) sink(m.id, m.seq, m.json);
      if (m.local !== undefined) for (const l of this.localPointsListeners) l(m.id, m.local);
    }
    if (fleet > 0) this.publishFleet(full ? this.fleetDirty : this.fleetSoon);
    if (full) {
      // A new interval: what was in a delta two intervals ago is quiet again.
      const old = this.fleetSentBefore;
      this.fleetSentBefore = this.fleetSent;
      this.fleetSent = old;
      old.clear();
    }
  }

  /**
   * One delta of the given devices' summaries (a FleetMessage), written once for every client on the
   * fleet view, as bytes (summary-bytes.ts: no objects per device).
   */
  private publishFleet(changed: Iterable<DeviceState>): void {
    const bytes = this.writeDelta(changed, this.noteSent);
    this.fleetSoon.length = 0;
    this.publish('fleet', bytes);
  }

  private readonly noteSent = (d: DeviceState): void => {
    this.fleetDirty.delete(d);
    this.fleetSent.add(d);
    this.snapshots.published(d);
  };

  /** A `full: false` fleet message of these devices, in the reused buffer (valid until the next one). */
  private writeDelta(devices: Iterable<DeviceState>, each?: (d: DeviceState) => void): Uint8Array {
    const instance = this.devices.instance;
    const w = this.fleetText.begin().raw('{"type":"fleet","full":false,"devices":[');
    let removed: string[] | undefined;
    let first = true;
    for (const d of devices) {
      // A deleted device (registry/admin.ts) leaves the list; a new one of its id comes as a device.
      if (d.retired) (removed ??= []).push(d.id);
      else {
        if (!first) w.raw(',');
        first = false;
        writeSummary(w, d, instance);
      }
      each?.(d);
    }
    w.raw(']');
    if (removed) w.raw(',"removed":').utf8(JSON.stringify(removed));
    return w.raw('}').bytes();
  }

  /**
   * A snapshot is written: its clients get it, then the deltas they were not on the topic for (what
   * changed since it began, as it is now), and join the topic.
   */
  private snapshotReady(clients: readonly LiveClient[], snapshot: Uint8Array, since: ReadonlySet<DeviceState>): void {
    let catchUp: Uint8Array | undefined;
    for (const c of clients) {
      // Congested meanwhile: it gets a new one when it catches up. Or it stopped following.
      if (c.congested || !c.streams.has('fleet')) continue;
      this.sendTo(c, snapshot);
      c.snapshotBytes = snapshot.length;
      if (since.size > 0) this.sendTo(c, (catchUp ??= this.writeDelta(since)));
      c.conn.subscribe('fleet');
    }
  }

  /** Nobody follows the fleet: a new follower starts from a full snapshot anyway. */
  private forgetFleet(): void {
    this.fleetDirty.clear();
    this.fleetSoon.length = 0;
    this.fleetSent.clear();
    this.fleetSentBefore.clear();
  }

  /** Unsubscribes clients over budget; brings back those that caught up (unless `recover` is false), telling them what they missed. */
  checkBudgets(recover = true): void {
    const budget = this.opts.budgetBytes;
    for (const c of this.clients) {
      const buffered = c.conn.bufferedAmount();
      // The client's own snapshot does not count against its budget, only what queues behind it.
      if (c.snapshotBytes !== undefined && buffered <= budget) c.snapshotBytes = undefined;
      if (!c.congested && buffered - (c.snapshotBytes ?? 0) > budget) {
        c.congested = true;
        for (const s of c.streams) {
          c.conn.unsubscribe(s);
          c.missedFrom.set(s, this.topicCounts.get(s) ?? 0);
        }
      } else if (recover && c.congested && buffered <= budget / 2) {
        this.recover(c);
      }
    }
  }

  private recover(c: LiveClient): void {
    c.congested = false;
    let count = c.missedDirect;
    const affected: string[] = [];
    for (const s of c.streams) {
      const missed = (this.topicCounts.get(s) ?? 0) - (c.missedFrom.get(s) ?? 0);
      if (missed > 0) affected.push(s);
      count += missed;
      if (s !== 'fleet') c.conn.subscribe(s);
    }
    this.dropped += count - c.missedDirect;
    c.missedFrom.clear();
    c.missedDirect = 0;
    if (count > 0) c.conn.send(JSON.stringify({ type: 'missed', count, streams: affected } satisfies MissedMessage));
    if (c.streams.has('fleet')) this.snapshots.request(c);
    // A reload it missed: the types message is whole, so the current one repairs it.
    if (c.streams.has('types') && affected.includes('types')) c.conn.send(this.typesMessage());
    // Alarm changes it missed: the open ones again (a cleared one it missed is gone from that list).
    if (c.streams.has('alarms')) c.conn.send(this.alarmSnapshot());
  }
}
