/**
 * The `changes` form of the fleet deltas (LIVE.md, `"fleet": "changes"`): per device only what
 * changed since the device's previous changes item, `{ id, lastSeen, …changed fields, counters?,
 * last?: { changed channels } }`. A device's first item (none before, or after forget()) has every
 * field, so a client that has not seen the device can add it as it is.
 *
 * Why it is right for every client on the topic, whenever it came: each item covers the changes
 * since the previous item, which is no later than any client's snapshot (on subscribe, after
 * `missed`); so a client that applies its snapshot and then every item it gets misses no change.
 *
 * What it saves: at 1 Hz a device's summary mostly repeats itself (type, name, labels, presence,
 * connectedAt, epoch); its counters and the channels it sent are what moves. The baseline per device
 * (a Mark) holds values, never text, and is updated in place.
 */
import type { DeviceSummary, LastValue } from '../../devices/api/json.js';
import { countersJson, lastValueJson, num, str } from './summary-json.js';

/** What the previous item of a device said (every field but id and lastSeen, which always go out). */
class Mark {
  online = false;
  type: string | null = null;
  name: string | null = null;
  labels: Record<string, string> = {};
  disabled = false;
  transport: string | null = null;
  instance: string | null = null;
  connectedAt: number | null = null;
  disconnectedAt: number | null = null;
  offlineCause: string | null = null;
  offlineDetail: string | null = null;
  epoch: number | null = null;
  ackedSeq: number | null = null;
  connections = 0;
  frames = 0;
  readings = 0;
  duplicates = 0;
  gaps = 0;
  errors = 0;
  lastError: string | null = null;
  readonly channels: string[] = [];
  readonly values: (number | boolean)[] = [];
  readonly times: number[] = [];
}

/** Any device identity with a stable object per device (DeviceState): a retired device's successor is another one. */
export class FleetChanges<D extends object> {
  private readonly marks = new Map<D, Mark>();

  /** Devices with a baseline (for tests and metrics). */
  get size(): number {
    return this.marks.size;
  }

  /** The changes item of `device`, whose summary now is `s`; the baseline moves to `s`. */
  item(device: D, s: DeviceSummary): string {
    let m = this.marks.get(device);
    const all = m === undefined;
    if (m === undefined) this.marks.set(device, (m = new Mark()));
    let out = `{"id":${str(s.id)},"lastSeen":${num(s.lastSeen)}`;
    if (all || m.online !== s.online) out += `,"online":${(m.online = s.online)}`;
    if (all || m.type !== s.type) out += `,"type":${str((m.type = s.type))}`;
    if (all || m.name !== s.name) out += `,"name":${str((m.name = s.name))}`;
    if (all || !sameLabels(m.labels, s.labels)) out += `,"labels":${JSON.stringify((m.labels = s.labels))}`;
    if (all || m.disabled !== s.disabled) out += `,"disabled":${(m.disabled = s.disabled)}`;
    if (all || m.transport !== s.transport) out += `,"transport":${str((m.transport = s.transport))}`;
    if (all || m.instance !== s.instance) out += `,"instance":${str((m.instance = s.instance))}`;
    if (all || m.connectedAt !== s.connectedAt) out += `,"connectedAt":${num((m.connectedAt = s.connectedAt))}`;
    if (all || m.disconnectedAt !== s.disconnectedAt) out += `,"disconnectedAt":${num((m.disconnectedAt = s.disconnectedAt))}`;
    if (all || m.offlineCause !== s.offlineCause) out += `,"offlineCause":${str((m.offlineCause = s.offlineCause))}`;
    if (all || m.offlineDetail !== s.offlineDetail) out += `,"offlineDetail":${str((m.offlineDetail = s.offlineDetail))}`;
    if (all || m.epoch !== s.epoch) out += `,"epoch":${num((m.epoch = s.epoch))}`;
    if (all || m.ackedSeq !== s.ackedSeq) out += `,"ackedSeq":${num((m.ackedSeq = s.ackedSeq))}`;
    const c = s.counters;
    if (all || m.frames !== c.frames || m.readings !== c.readings || m.errors !== c.errors || m.duplicates !== c.duplicates || m.gaps !== c.gaps || m.connections !== c.connections) {
      out += `,"counters":${countersJson(c)}`;
      m.frames = c.frames;
      m.readings = c.readings;
      m.errors = c.errors;
      m.duplicates = c.duplicates;
      m.gaps = c.gaps;
      m.connections = c.connections;
    }
    if (all || m.lastError !== s.lastError) out += `,"lastError":${str((m.lastError = s.lastError))}`;
    const last = changedLast(m, s.last);
    if (all || last !== '') out += `,"last":{${last}}`;
    return `${out}}`;
  }

  /** A deleted device: its baseline goes (a device of the same id later is another DeviceState). */
  forget(device: D): void {
    this.marks.delete(device);
  }

  /** Nobody follows the changes: every device's next item is whole again. */
  clear(): void {
    this.marks.clear();
  }
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  if (a === b) return true;
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

/** The channels whose value or time differ from the mark's, as JSON members; the mark takes them. */
function changedLast(m: Mark, last: Record<string, LastValue>): string {
  let out = '';
  for (const ch in last) {
    const lv = last[ch]!;
    const at = m.channels.indexOf(ch);
    if (at === -1) {
      m.channels.push(ch);
      m.values.push(lv.value);
      m.times.push(lv.time);
    } else if (m.times[at] === lv.time && m.values[at] === lv.value) {
      continue;
    } else {
      m.values[at] = lv.value;
      m.times[at] = lv.time;
    }
    out += (out === '' ? '' : ',') + lastValueJson(ch, lv);
  }
  return out;
}
