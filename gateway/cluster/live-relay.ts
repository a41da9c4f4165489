/**
 * Live views across instances, by interest. When local clients (WebSocket or SSE) begin following
 * a device, this instance follows the device's live topic on the backbone and announces its interest
 * (a retained list per instance); when the last one leaves, it stops. Every instance that ingests
 * frames of a device some other instance is interested in (its holder; every bridge gateway for a
 * bridged device) builds the device's stream and publishes the points it ingested itself, already
 * coalesced and downsampled, once per live flush. Nobody else pays anything for a device nobody
 * elsewhere watches.
 *
 * Resume stays gap-free: each instance numbers the messages it sends its own clients, and relayed
 * points join them. When this instance may have missed relayed points (it followed nobody for a
 * while, or lost the backbone), the stream is broken (DeviceStreams.breakAt): a resume from before
 * answers too_old, and the client fills the gap from history.
 *
 * Relay message (live/{deviceId}): {"from": instance, "points": {…}, "downsampled": bool}.
 */
import type { DeviceState, DeviceTable } from '../devices.js';
import type { Relayed } from '../live/device-streams.js';
import type { LiveHub } from '../live/hub.js';
import type { Backbone } from './backbone.js';

/** Interest changes are announced together, at most this often (a page subscribing to many devices at once). */
const ANNOUNCE_MS = 20;

export class LiveRelay {
  /** Devices other instances' clients follow: instance → ids. */
  private readonly remote = new Map<string, Set<string>>();
  /** How many instances are interested in each device; this instance builds its stream meanwhile. */
  private readonly wanted = new Map<string, number>();
  private announceTimer: NodeJS.Timeout | undefined;
  /** Live messages passed on and taken in, for metrics. */
  sent = 0;
  received = 0;

  constructor(
    private readonly backbone: Backbone,
    private readonly hub: LiveHub,
    private readonly devices: DeviceTable,
  ) {}

  attach(): void {
    const { backbone, hub } = this;
    hub.onInterest((id, watching) => this.local(id, watching));
    hub.onLocalPoints((id, points) => this.pass(id, points));
    backbone.onInterest((instance, ids) => this.interest(instance, ids));
    backbone.onInstance((instance, online) => {
      if (!online) this.interest(instance, []);
    });
    backbone.onLive((id, json) => this.take(id, json));
    backbone.onRejoined(() => {
      // What other instances published while we were away is lost: resumes from before it must not pass.
      for (const id of hub.watchedDevices()) if (!this.heldHere(this.devices.get(id))) hub.streams.breakAt(id);
      this.announce();
    });
  }

  private local(id: string, watching: boolean): void {
    if (watching) {
      // Points of a device held elsewhere were not followed until now: no resume across this point.
      if (!this.heldHere(this.devices.get(id))) this.hub.streams.breakAt(id);
      this.backbone.followLive(id);
    } else {
      this.backbone.unfollowLive(id);
    }
    this.announceTimer ??= setTimeout(() => this.announce(), ANNOUNCE_MS);
  }

  /** Says what this instance follows now (also at start: a retained list from before a restart would be stale). */
  announce(): void {
    if (this.announceTimer) clearTimeout(this.announceTimer);
    this.announceTimer = undefined;
    this.backbone.publishInterest([...this.hub.watchedDevices()]);
  }

  private interest(instance: string, ids: string[]): void {
    // A retained list of an instance that is not in the cluster (it died): nobody there to send to.
    if (ids.length > 0 && !this.backbone.peers.has(instance)) return;
    const before = this.remote.get(instance) ?? new Set<string>();
    const now = new Set(ids);
    for (const id of now) {
      if (before.has(id)) continue;
      const n = this.wanted.get(id) ?? 0;
      this.wanted.set(id, n + 1);
      if (n === 0) this.hub.streams.watch(id);
    }
    for (const id of before) {
      if (now.has(id)) continue;
      const n = this.wanted.get(id) ?? 1;
      if (n > 1) this.wanted.set(id, n - 1);
      else {
        this.wanted.delete(id);
        this.hub.streams.unwatch(id, Date.now());
      }
    }
    if (now.size === 0) this.remote.delete(instance);
    else this.remote.set(instance, now);
  }

  /** Points ingested here: to the backbone while another instance is interested. */
  private pass(id: string, points: Relayed): void {
    if (!this.wanted.has(id)) return;
    if (this.backbone.publishLive(id, JSON.stringify({ from: this.backbone.instance, points: points.points, downsampled: points.downsampled }))) this.sent++;
  }

  private take(id: string, json: string): void {
    const m = JSON.parse(json) as { from?: unknown; points?: unknown; downsampled?: unknown };
    if (m.from === this.backbone.instance || typeof m.points !== 'object' || m.points === null) return;
    this.received++;
    this.hub.relayed(id, { points: m.points as Relayed['points'], downsampled: m.downsampled === true });
  }

  private heldHere(d: DeviceState | undefined): boolean {
    return d !== undefined && d.online && d.link !== undefined && d.link.instance === undefined && d.link.shared !== true;
  }

  close(): void {
    if (this.announceTimer) clearTimeout(this.announceTimer);
    this.announceTimer = undefined;
  }
}
