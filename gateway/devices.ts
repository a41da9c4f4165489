/**
 * What the gateway knows of each device: presence with the cause of the last disconnect, the
 * connection it is reachable on, counters, the last value per channel and its dedupe state.
 */
import type { DeviceSummary, OfflineCause } from '../devices/api/json.js';
import { deviceTypes, typeOfDevice } from '../devices/device-types.js';
import { DeviceSequence, type SeqWindow } from './dedupe.js';
import type { AckSlot } from './ack-slot.js';
import type { DeviceRules } from './alarms/evaluator.js';
import type { RegistryEntry } from './auth.js';

export type { OfflineCause };

/** A device's current connection, whatever the transport. */
export interface DeviceLink {
  readonly transport: 'ws' | 'mqtt';
  readonly remoteAddress: string;
  /** Sends one frame. The bytes may be reused by the caller after the call returns. */
  send(bytes: Uint8Array): 'sent' | 'queued' | 'dropped';
  /** Closes the connection with `closeCode` (send an error frame first with send() when there is one). */
  close(closeCode: number, reason: string): void;
  bufferedAmount(): number;
  /** Transports with their own delivery acks (MQTT QoS 1) send commands this way; `done` when written. */
  publishReliable?(bytes: Uint8Array, done: (err?: Error) => void): void;
  /** Why the gateway is closing this link, set before close() so presence reports it. */
  closingCause?: OfflineCause;
  /** Set when another gateway instance of the cluster holds the connection. */
  readonly instance?: string;
  /** Set when the connection is an external broker's, seen by every gateway of the share group. */
  readonly shared?: boolean;
}

/**
 * What another cluster instance counted for a device: its share, from its periodic summary
 * (cluster/fleet-view.ts). A device's record adds up the shares of every instance that took some
 * of its frames (the one holding it, the ones that held it before, or every bridge gateway).
 */
export interface RemoteShare {
  frames: number;
  readings: number;
  duplicates: number;
  errors: number;
  gaps: number;
  connections: number;
  lastSeen: number;
  epoch: number | null;
  ackedSeq: number | null;
  lastError: string | null;
  /** Last values, flat: channel, type, value, time, channel, … */
  last: number[];
}

/** Last value per channel as parallel arrays: updated in place on the hot path, no allocation. */
class LastValues {
  readonly channels: number[] = [];
  readonly values: number[] = [];
  readonly times: number[] = [];
  readonly types: number[] = [];
}

/**
 * One device. Its connection, counters and presence are plain fields; what only a device that
 * sends needs (dedupe, last values, ack state) is created with its first frame, so an idle
 * connected device costs little.
 */
export class DeviceState {
  online = false;
  link: DeviceLink | undefined;
  connectedAt = 0;
  lastSeen = 0;
  disconnectedAt = 0;
  offlineCause: OfflineCause | undefined;
  offlineDetail: string | undefined;
  connections = 0;
  frames = 0;
  readings = 0;
  duplicates = 0;
  errors = 0;
  lastErrorCode: string | undefined;
  /** The ack ledger's state for this device (acks.ts): only the ledger reads or writes it. */
  ack: AckSlot | undefined;
  /** Its alarm rules' state (alarms/evaluator.ts): only the evaluator reads or writes it. */
  alarms: DeviceRules | undefined;
  /** Its dedupe state (dedupe.ts): see `seq`. */
  private sequence: DeviceSequence | undefined;
  /** Last value per channel; created with the first reading. */
  last: LastValues | undefined;
  /** Other cluster instances' shares, by instance: only cluster/fleet-view.ts writes it. */
  elsewhere: Map<string, RemoteShare> | undefined;

  /** The type as of `typesSeen` and `entryTypeSeen`: worked out again when the types or the registry's type change. */
  private typeOf: string | undefined;
  private typesSeen: readonly unknown[] | undefined;
  private entryTypeSeen: string | undefined;
  /** Set once the device is deleted (DeviceTable.remove): whoever still holds this state lets it go. */
  retired = false;

  constructor(
    readonly id: string,
    public entry: RegistryEntry | undefined,
  ) {}

  /**
   * Names the device's channel schema in the types in force (devices/device-types.ts): a reload of
   * the types file may give a device a type (its id's prefix became one) or take it away.
   */
  get type(): string | undefined {
    const types = deviceTypes();
    const entryType = this.entry?.type;
    if (this.typesSeen !== types || this.entryTypeSeen !== entryType) {
      this.typeOf = typeOfDevice(this.id, entryType);
      this.typesSeen = types;
      this.entryTypeSeen = entryType;
    }
    return this.typeOf;
  }

  /** Its dedupe state, created when first needed (its first frame, a restored cursor): an idle connected device has none. */
  get seq(): DeviceSequence {
    return (this.sequence ??= new DeviceSequence());
  }

  /** The current boot's dedupe window, for readers: creates nothing (`seq` would, for a device that never sent). */
  get window(): SeqWindow | undefined {
    return this.sequence?.current;
  }

  /** The registry entry changed (the management API): name, type, labels and the rest follow it. */
  setEntry(entry: RegistryEntry | undefined): void {
    this.entry = entry;
  }

  setLast(channel: number, type: number, value: number, time: number): void {
    const l = (this.last ??= new LastValues());
    const ch = l.channels;
    for (let i = 0; i < ch.length; i++) {
      if (ch[i] === channel) {
        if (time >= l.times[i]!) {
          l.values[i] = value;
          l.times[i] = time;
          l.types[i] = type;
        }
        return;
      }
    }
    ch.push(channel);
    l.values.push(value);
    l.times.push(time);
    l.types.push(type);
  }

  get gaps(): number {
    return this.sequence?.gaps ?? 0;
  }

  /** `local`: this instance's id in a cluster, shown for connections held here. */
  toJSON(local?: string | null): DeviceSummary {
    const last: DeviceSummary['last'] = {};
    const times: Record<string, number> = {};
    const put = (ch: number, type: number, value: number, time: number) => {
      const k = String(ch);
      if (times[k] !== undefined && times[k]! > time) return;
      times[k] = time;
      last[k] = { value: type === 4 ? value === 1 : value, time };
    };
    const l = this.last;
    for (let i = 0; l !== undefined && i < l.channels.length; i++) put(l.channels[i]!, l.types[i]!, l.values[i]!, l.times[i]!);
    const cur = this.window;
    const counters = { connections: this.connections, frames: this.frames, readings: this.readings, duplicates: this.duplicates, gaps: this.gaps, errors: this.errors };
    let lastSeen = this.lastSeen;
    let epoch = cur?.epoch ?? null;
    let ackedSeq = this.ack?.ackedIn(cur?.epoch) ?? null;
    let lastError = this.lastErrorCode ?? null;
    // The dedupe position shown is the one of whoever took the device's newest frame.
    let newest = this.frames > 0 ? this.lastSeen : -1;
    if (this.elsewhere !== undefined) {
      for (const r of this.elsewhere.values()) {
        counters.frames += r.frames;
        counters.readings += r.readings;
        counters.duplicates += r.duplicates;
        counters.gaps += r.gaps;
        counters.errors += r.errors;
        // Every instance hears of every connection through presence: the most any counted is the count.
        counters.connections = Math.max(counters.connections, r.connections);
        if (r.lastSeen > lastSeen) lastSeen = r.lastSeen;
        if (r.frames > 0 && r.lastSeen > newest) {
          newest = r.lastSeen;
          epoch = r.epoch;
          ackedSeq = r.ackedSeq;
        }
        if (r.lastError !== null && lastError === null) lastError = r.lastError;
        for (let i = 0; i + 3 < r.last.length; i += 4) put(r.last[i]!, r.last[i + 1]!, r.last[i + 2]!, r.last[i + 3]!);
      }
    }
    return {
      id: this.id,
      online: this.online,
      lastSeen: lastSeen || null,
      type: this.type ?? null,
      name: this.entry?.name ?? null,
      labels: this.entry?.labels ?? {},
      disabled: this.entry?.disabled === true,
      transport: this.online ? this.link?.transport ?? null : null,
      // A bridged device's connection is the external broker's: no instance holds it.
      instance: this.online && !this.link?.shared ? this.link?.instance ?? (local || null) : null,
      connectedAt: this.connectedAt || null,
      disconnectedAt: this.disconnectedAt || null,
      offlineCause: this.online ? null : this.offlineCause ?? null,
      offlineDetail: this.online ? null : this.offlineDetail ?? null,
      epoch,
      ackedSeq,
      counters,
      lastError,
      last,
    };
  }

  /** This instance's own share, for its summary (cluster/fleet-view.ts). */
  share(): RemoteShare {
    const cur = this.window;
    const last: number[] = [];
    const l = this.last;
    for (let i = 0; l !== undefined && i < l.channels.length; i++) last.push(l.channels[i]!, l.types[i]!, l.values[i]!, l.times[i]!);
    return {
      frames: this.frames,
      readings: this.readings,
      duplicates: this.duplicates,
      errors: this.errors,
      gaps: this.gaps,
      connections: this.connections,
      lastSeen: this.lastSeen,
      epoch: cur?.epoch ?? null,
      ackedSeq: this.ack?.ackedIn(cur?.epoch) ?? null,
      lastError: this.lastErrorCode ?? null,
      last,
    };
  }
}

export class DeviceTable {
  private readonly byId = new Map<string, DeviceState>();
  online = 0;

  constructor(
    registry: Iterable<RegistryEntry>,
    /** This instance's id when it is part of a cluster. */
    readonly instance: string | null = null,
  ) {
    for (const e of registry) this.byId.set(e.id, new DeviceState(e.id, e));
  }

  get(id: string): DeviceState | undefined {
    return this.byId.get(id);
  }

  getOrCreate(id: string, entry: RegistryEntry | undefined): DeviceState {
    let d = this.byId.get(id);
    if (d === undefined) {
      d = new DeviceState(id, entry);
      this.byId.set(id, d);
    }
    return d;
  }

  /**
   * Forgets a deleted device: a new connection of the same id starts a fresh state. The old state
   * is marked retired; its connection (closed by the caller) still reports its disconnect on it.
   */
  remove(id: string): DeviceState | undefined {
    const d = this.byId.get(id);
    if (d === undefined) return undefined;
    this.byId.delete(id);
    d.retired = true;
    return d;
  }

  all(): IterableIterator<DeviceState> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  markOnline(d: DeviceState, link: DeviceLink, now: number): void {
    if (!d.online) this.online++;
    d.online = true;
    d.link = link;
    d.connectedAt = now;
    d.lastSeen = Math.max(d.lastSeen, now);
    d.connections++;
  }

  /** News of an offline device from elsewhere (another cluster instance): kept when newer than what is known. */
  noteOffline(d: DeviceState, at: number, cause: OfflineCause | undefined, detail: string | undefined): void {
    if (d.online || at <= d.disconnectedAt) return;
    d.disconnectedAt = at;
    d.offlineCause = cause;
    d.offlineDetail = detail;
  }

  /** Marks the device offline if `link` is still its current connection (a replaced link is not). */
  markOffline(d: DeviceState, link: DeviceLink, cause: OfflineCause, detail: string | undefined, now: number): boolean {
    if (d.link !== link) return false;
    if (d.online) this.online--;
    d.online = false;
    d.link = undefined;
    d.disconnectedAt = now;
    d.offlineCause = cause;
    d.offlineDetail = detail;
    return true;
  }
}
