/**
 * What the page knows of every device: the newest summary (from GET /api/devices and the live
 * `fleet` stream, merged field by field) and the sparkline of its primary channel. Tells listeners
 * which ids changed; views decide what to redraw.
 */
import { primaryChannel } from './channels.js';
import { Emitter } from './emitter.js';
import { SparkRing } from './sparkline.js';
import type { DeviceSummary } from './types.js';

export interface FleetEntry {
  summary: DeviceSummary;
  spark: SparkRing;
  sparkChannel: string | undefined;
}

export interface FleetChange {
  /** Devices whose summary changed. */
  ids: ReadonlySet<string>;
  /** Devices were added, or one went online/offline: filtered lists need rebuilding. */
  membership: boolean;
}

export class FleetState extends Emitter<{ change: [FleetChange] }> {
  readonly entries = new Map<string, FleetEntry>();
  online = 0;

  get(id: string): FleetEntry | undefined {
    return this.entries.get(id);
  }

  /** Applies a snapshot (`full`) or a delta; a snapshot is authoritative for which devices exist. */
  apply(devices: DeviceSummary[], full: boolean): void {
    const ids = new Set<string>();
    let membership = false;
    for (const d of devices) {
      if (!d || typeof d.id !== 'string') continue;
      ids.add(d.id);
      let e = this.entries.get(d.id);
      if (!e) {
        e = { summary: { ...d }, spark: new SparkRing(), sparkChannel: undefined };
        this.entries.set(d.id, e);
        membership = true;
      } else {
        if (e.summary.online !== d.online) membership = true;
        Object.assign(e.summary, d);
      }
      this.sample(e);
    }
    if (full) {
      for (const id of this.entries.keys()) {
        if (!ids.has(id)) {
          this.entries.delete(id);
          membership = true;
        }
      }
    }
    this.countOnline();
    if (ids.size > 0 || membership) this.emit('change', { ids, membership });
  }

  /** Devices deleted at the gateway leave the page. */
  remove(ids: readonly string[]): void {
    let membership = false;
    for (const id of ids) membership = this.entries.delete(id) || membership;
    if (!membership) return;
    this.countOnline();
    this.emit('change', { ids: new Set(ids), membership: true });
  }

  private countOnline(): void {
    let n = 0;
    for (const e of this.entries.values()) if (e.summary.online) n++;
    this.online = n;
  }

  private sample(e: FleetEntry): void {
    const last = e.summary.last;
    if (!last) return;
    e.sparkChannel ??= primaryChannel(e.summary.type, Object.keys(last));
    const v = e.sparkChannel === undefined ? undefined : last[e.sparkChannel];
    if (v && typeof v.value === 'number') e.spark.push(v.value, v.time);
  }
}
