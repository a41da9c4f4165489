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
import type { DeviceCounters, DeviceSummary, LastValue } from '../../devices/api/json.js';
import { lastValueJson, valueJson } from './summary-json.js';

/** What the previous item of a device said. */
class Mark {
  /** The summary's plain fields in their order (all but id, lastSeen, labels, counters, last). */
  readonly fields: unknown[] = [];
  labels: Record<string, string> = {};
  readonly counters: number[] = [];
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
    const first = m === undefined;
    if (m === undefined) this.marks.set(device, (m = new Mark()));
    let out = `{"id":${JSON.stringify(s.id)},"lastSeen":${valueJson(s.lastSeen)}`;
    const fields = s as unknown as Record<string, unknown>;
    let i = 0;
    for (const k in fields) {
      if (k === 'id' || k === 'lastSeen') continue;
      if (k === 'counters') {
        if (countersMoved(m.counters, s.counters) || first) out += `,"counters":${valueJson(s.counters)}`;
      } else if (k === 'labels') {
        if (!sameLabels(m.labels, s.labels) || first) out += `,"labels":${valueJson(s.labels)}`;
        m.labels = s.labels;
      } else if (k === 'last') {
        const last = changedLast(m, s.last);
        if (last !== '' || first) out += `,"last":{${last}}`;
      } else {
        const v = fields[k];
        if (m.fields[i] !== v || first) out += `,"${k}":${valueJson(v)}`;
        m.fields[i++] = v;
      }
    }
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

/** Whether any counter differs from `seen`; `seen` becomes `now`. */
function countersMoved(seen: number[], now: DeviceCounters): boolean {
  let moved = false;
  let i = 0;
  const c = now as unknown as Record<string, number>;
  for (const k in c) {
    if (seen[i] !== c[k]) {
      seen[i] = c[k]!;
      moved = true;
    }
    i++;
  }
  return moved;
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
