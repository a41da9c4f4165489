/**
 * The fleet as every instance shows it, without anyone seeing another's frames: each instance
 * publishes, at most once per interval, its own share (counters, last values, lastSeen, dedupe
 * position) of the devices that changed here since the last summary; the others keep the share per
 * instance on the device (DeviceState.elsewhere), and a device's record adds the shares up. So the
 * counters of a device that moved, or of a bridged device whose frames the shared subscription
 * spreads over every gateway, are right on every instance, at most one interval (plus the broker's
 * delay) behind its owner. Presence (online, held where) travels on its own, at once (cluster.ts).
 *
 * A change of the error count alone (a refused frame) goes out with the device's next frame or
 * presence change.
 *
 * Summary message: {"devices": [[id, frames, readings, duplicates, errors, gaps, connections,
 * lastSeen, epoch, ackedSeq, lastError, [channel, type, value, time, …]], …]}.
 */
import type { DeviceLink, DeviceState, DeviceTable, RemoteShare } from '../devices.js';
import type { Logger } from '../log.js';
import type { Backbone } from './backbone.js';

/** Devices per summary message: keeps each message well under the brokers' default size limits. */
const DEVICES_PER_MESSAGE = 500;

type Entry = [string, number, number, number, number, number, number, number, number | null, number | null, string | null, number[]];

export interface FleetViewSources {
  ingest: { onTelemetry(l: (device: DeviceState) => void): void; onDuplicate(l: (device: DeviceState) => void): void };
  presence: { onConnect(l: (device: DeviceState, link: DeviceLink) => void): void; onDisconnect(l: (device: DeviceState, link: DeviceLink) => void): void };
}

export class FleetView {
  /** Devices whose share changed here since the last summary. */
  private readonly changed = new Set<DeviceState>();
  private timer: NodeJS.Timeout | undefined;
  private readonly changeListeners: ((device: DeviceState) => void)[] = [];
  /** Shares applied from other instances' summaries, for metrics. */
  sharesIn = 0;

  constructor(
    private readonly backbone: Backbone,
    private readonly devices: DeviceTable,
    private readonly deviceFor: (id: string) => DeviceState,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** A device's shown record changed because of another instance's summary. */
  onChange(l: (device: DeviceState) => void): void {
    this.changeListeners.push(l);
  }

  listen(from: FleetViewSources): void {
    const note = (device: DeviceState) => this.changed.add(device);
    from.ingest.onTelemetry(note);
    from.ingest.onDuplicate(note);
    // A connection another instance holds is that instance's to tell.
    const noteLocal = (device: DeviceState, link: DeviceLink) => link.instance === undefined && this.changed.add(device);
    from.presence.onConnect(noteLocal);
    from.presence.onDisconnect(noteLocal);
    this.backbone.onSummary((instance, json) => this.apply(instance, json));
    // A newcomer knows nothing of what was counted before it came: the next summary says all of it.
    this.backbone.onInstance((_instance, online) => {
      if (!online) return;
      for (const d of this.devices.all()) if (d.frames + d.duplicates + d.errors > 0) this.changed.add(d);
    });
  }

  start(): void {
    this.timer ??= setInterval(() => this.publish(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.publish();
  }

  /** Sends the changed devices' shares. When the backbone is down they stay changed for the next try. */
  publish(): void {
    if (this.changed.size === 0) return;
    if (!this.backbone.connected) {
      this.backbone.unsent.summary++;
      return;
    }
    let batch: Entry[] = [];
    for (const d of this.changed) {
      // Only what this instance counted itself: a device it merely heard of has nothing to tell.
      // A deleted one neither: its share, arriving after the deletion, would make it again elsewhere.
      if (d.retired || d.frames + d.duplicates + d.errors + d.connections === 0) continue;
      const s = d.share();
      batch.push([d.id, s.frames, s.readings, s.duplicates, s.errors, s.gaps, s.connections, s.lastSeen, s.epoch, s.ackedSeq, s.lastError, s.last]);
      if (batch.length === DEVICES_PER_MESSAGE) {
        this.backbone.publishSummary(JSON.stringify({ devices: batch }));
        batch = [];
      }
    }
    if (batch.length > 0) this.backbone.publishSummary(JSON.stringify({ devices: batch }));
    this.changed.clear();
  }

  private apply(instance: string, json: string): void {
    const msg = JSON.parse(json) as { devices?: unknown };
    if (!Array.isArray(msg.devices)) throw new Error('a summary without "devices"');
    for (const e of msg.devices as Entry[]) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || e.length < 12) continue;
      const device = this.deviceFor(e[0]);
      const share: RemoteShare = {
        frames: e[1],
        readings: e[2],
        duplicates: e[3],
        errors: e[4],
        gaps: e[5],
        connections: e[6],
        lastSeen: e[7],
        epoch: e[8],
        ackedSeq: e[9],
        lastError: e[10],
        last: Array.isArray(e[11]) ? e[11] : [],
      };
      (device.elsewhere ??= new Map()).set(instance, share);
      this.sharesIn++;
      for (const l of this.changeListeners) l(device);
    }
  }
}
