/**
 * The full fleet snapshot a client gets when it starts following `fleet` (LIVE.md: one
 * `{"type":"fleet","full":true,…}` message), written as bytes SLICE devices per event-loop turn. In
 * one go it held the loop ~4.4 µs per device: 44 ms at 10,000 devices, nearly half a second at
 * 100,000, at every dashboard that opened or caught up, with every device's frames waiting.
 *
 * A snapshot written over several turns is not one instant, so the client joins the `fleet` topic
 * only when its snapshot goes out, followed at once by a delta of the devices that were in a fleet
 * delta (or removed) after the snapshot had written them: the deltas it was not subscribed to yet
 * (a device written after its delta is in the snapshot as it is now). A client
 * that comes while a snapshot is being written waits for that one (the same catch-up delta covers
 * it). With up to SLICE devices the snapshot is written and sent at once, as before.
 */
import type { DeviceState, DeviceTable } from '../devices.js';
import { JsonBytes } from './json-bytes.js';
import { writeSummary } from './summary-bytes.js';

/** Devices written per loop turn: about 2 ms. */
export const SNAPSHOT_SLICE = 500;

export interface SnapshotDelivery<C> {
  /** The clients waiting for it, the snapshot (valid during the call), and what changed since it began. */
  (clients: readonly C[], snapshot: Uint8Array, since: ReadonlySet<DeviceState>): void;
}

export class FleetSnapshots<C> {
  private waiting: C[] = [];
  private text: JsonBytes | undefined;
  private rest: Iterator<DeviceState> | undefined;
  private first = true;
  private next: NodeJS.Immediate | undefined;
  /** Snapshots begun (each one written once for every client that came while it was written). */
  built = 0;
  /** Devices the snapshot in progress has written. */
  private readonly written = new Set<DeviceState>();
  /** Of those, the ones in a fleet delta since. */
  private readonly since = new Set<DeviceState>();

  constructor(
    private readonly devices: DeviceTable,
    private readonly deliver: SnapshotDelivery<C>,
    private readonly slice = SNAPSHOT_SLICE,
  ) {}

  /** A client wants a snapshot: the one being written, or a new one. */
  request(c: C): void {
    if (!this.waiting.includes(c)) this.waiting.push(c);
    if (this.text !== undefined) return;
    this.built++;
    this.text = new JsonBytes().raw('{"type":"fleet","full":true,"devices":[');
    this.rest = this.devices.all();
    this.first = true;
    this.write();
  }

  /** Whether the client waits for a snapshot (it is not on the `fleet` topic yet). */
  waits(c: C): boolean {
    return this.waiting.includes(c);
  }

  /** The client left or stopped following `fleet`. */
  drop(c: C): void {
    const i = this.waiting.indexOf(c);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** A device went out in a fleet delta (published on the topic): a waiting client missed it. */
  published(d: DeviceState): void {
    if (this.text !== undefined && this.written.has(d)) this.since.add(d);
  }

  /** Shutdown: nothing more is written. */
  stop(): void {
    if (this.next) clearImmediate(this.next);
    this.next = undefined;
  }

  private readonly write = (): void => {
    this.next = undefined;
    const w = this.text!;
    const instance = this.devices.instance;
    for (let n = 0; n < this.slice; n++) {
      const r = this.rest!.next();
      if (r.done) return this.finish(w);
      const d = r.value;
      if (!this.first) w.raw(',');
      this.first = false;
      writeSummary(w, d, instance);
      this.written.add(d);
    }
    this.next = setImmediate(this.write);
  };

  private finish(w: JsonBytes): void {
    const clients = this.waiting;
    this.waiting = [];
    this.text = this.rest = undefined;
    try {
      if (clients.length > 0) this.deliver(clients, w.raw(']}').bytes(), this.since);
    } finally {
      this.written.clear();
      this.since.clear();
    }
  }
}
