/**
 * The ack ledger: the one owner of every device's ack and cursor state. It hears ingest's events
 * (a new frame handed to storage, a replay), and at most once per interval per device sends an ack
 * for what storage has settled, after the dedupe cursor behind it reached the cursor file: an ack
 * the device got is never forgotten by a restart, and never covers a reading that is only in memory.
 * It also restores those cursors into dedupe state at start and adopts the cursor of a device that
 * left another cluster instance.
 *
 * The walk of one frame (each module once, in this order):
 *   1. transport (device-socket.ts, mqtt/embedded.ts, mqtt/bridge.ts): bytes from the connection
 *   2. ingest.ts: decode, dedupe (DeviceState.seq), counters and last values
 *   3. storage/: write() copies the points into a batch and returns a ticket; durableTicket passes
 *      it later, once the batch is in the database or fsync'd to the spill file
 *   4. live/ (ingest's onTelemetry): the readings join the device's stream, published at the hub's
 *      next flush
 *   5. acks.ts, here (ingest's onIngested): the device is queued; at the next flush, once
 *      durableTicket covers the ticket, its cursor goes to the cursor file and then the ack out
 *   (No other cluster instance sees the frame: cluster/ tells them summaries, and live points by interest.)
 * Per frame the ledger touches only the device's own slot (DeviceState.ack): no lookup, no allocation
 * beyond the slot's first use and the growth of its small unsettled array.
 */
import { encodeAck, FrameType, HEADER_BYTES, writeHeader, type FrameHeader } from '../devices/codec/index.js';
import { after, AckSlot } from './ack-slot.js';
import type { Cursor, CursorStore } from './cursors.js';
import type { DeviceLink, DeviceState } from './devices.js';
import type { Storage } from './storage/storage.js';

/** What the ledger hears from ingest. */
export interface IngestEvents {
  onIngested(listener: (device: DeviceState, header: FrameHeader, ticket: number) => void): void;
  onDuplicate(listener: (device: DeviceState, header: FrameHeader) => void): void;
}

export interface AckOptions {
  intervalMs: number;
  /**
   * Adaptive acks: when a flush has more acks due than `stretchAbove`, acks cost the gateway one
   * syscall each, so a slow sender's ack waits until it covers `stretchFrames` frames or its oldest
   * frame waited `maxDelayMs`. A fast sender (≥ stretchFrames per interval) is acked every interval
   * as before, and a device never holds more than max(stretchFrames, what it sends in maxDelayMs)
   * frames for it. Replays are acked at once. Unset: every ack goes out at the next interval.
   */
  stretch?: { above: number; frames: number; maxDelayMs: number };
  /** Over this many buffered bytes toward a device, its ack waits for the next flush. */
  sendBudget: number;
  /** Range acks (bridge mode: other gateways take the other seqs) instead of cumulative ones. */
  ranges: boolean;
}

/**
 * Acks sent per loop turn. Each is a send syscall (about 15 µs on loopback here): at 10,000 devices
 * × 1 Hz a flush has about 250 due, and sending them in one go held the event loop for 3.5 ms every
 * interval, which every frame arriving meanwhile waited out (the gateway's p99 to the dashboard).
 * The rest of a flush's acks go out at the next loop turns, between the frames.
 */
export const ACK_SLICE = 32;

export class AckLedger {
  private timer: NodeJS.Timeout | undefined;
  /**
   * The last flush's devices whose acks are still being sent, a slice per loop turn: what the
   * cursor write made safe goes out from `sendingAt` on. `sendingUnacked` holds each one's
   * unacked count as of the flush, so frames that come meanwhile stay counted for the next ack.
   */
  private readonly sending: DeviceState[] = [];
  private readonly sendingUnacked: number[] = [];
  private sendingAt = 0;
  private sendingWritten = true;
  private sendingNow = 0;
  private sendMore: NodeJS.Immediate | undefined;
  /** Devices with something to do, in the order they became so; flush() drains it. */
  private readonly queue: DeviceState[] = [];
  /**
   * Stretched acks by when they are due (slot = ms / intervalMs, at slot % length), so a flush
   * touches only the devices due by then, not every held one.
   */
  private readonly held: DeviceState[][];
  /** Slots up to this one were released. */
  private releasedSlot = -1;
  /** Advanced at each flush; frames of one flush interval share an unsettled entry. */
  private tick = 0;
  /** Ticket of the newest storage write of an ingested frame. */
  private lastTicket = 0;
  private readonly buf = new Uint8Array(HEADER_BYTES);
  private readonly view = new DataView(this.buf.buffer);
  private readonly header = { epoch: 0, seq: 0, timestamp: 0 };
  acksSent = 0;
  acksDeferred = 0;
  /** Acks held back by a stretched flush (each one later covered by a single ack). */
  acksStretched = 0;
  /** Acks the previous flush found due: above opts.stretch.above, this flush stretches. */
  private dueLastFlush = 0;
  private lastFlushAt = 0;
  /** Flushes whose cursor lines did not all reach the file: their acks wait for a later flush. */
  cursorFailures = 0;
  private readonly flushedListeners: ((now: number) => void)[] = [];

  constructor(
    ingest: IngestEvents,
    private readonly cursors: CursorStore,
    private readonly storage: Pick<Storage, 'durableTicket'>,
    private readonly opts: AckOptions,
  ) {
    const st = opts.stretch;
    this.held = Array.from({ length: st ? Math.ceil(st.maxDelayMs / opts.intervalMs) + 2 : 0 }, () => []);
    ingest.onIngested((device, h, ticket) => this.ingested(device, h.epoch, h.seq, ticket));
    ingest.onDuplicate((device, h) => this.duplicate(device, h.epoch, h.seq));
  }

  /**
   * Loads the cursor file and restores each cursor into its device's dedupe state and durable
   * position, so frames acked before a restart are recognised as replays. Call before any frame.
   */
  restore(deviceFor: (id: string) => DeviceState): number {
    let n = 0;
    for (const [id, c] of this.cursors.open()) {
      const d = deviceFor(id);
      d.seq.restore(c.epoch, c.contig);
      const s = (d.ack ??= new AckSlot());
      s.epoch = c.epoch;
      s.contig = c.contig;
      n++;
    }
    return n;
  }

  /**
   * Where the device's frames were safe when it left another instance. Its dedupe window here takes
   * the cursor when it knows less (unless the device is held here and its frames were not waiting
   * for this cursor), and the durable position moves up to it, so an ack here can cover what the
   * other instance stored.
   */
  adopt(device: DeviceState, c: Cursor, heldHere: boolean): void {
    const cur = device.seq.current;
    if (!heldHere && (cur === undefined || cur.epoch !== c.epoch || after(c.contig, cur.contig))) device.seq.restore(c.epoch, c.contig);
    if (device.seq.current?.epoch !== c.epoch) return;
    const s = (device.ack ??= new AckSlot());
    if (s.epoch !== c.epoch || after(c.contig, s.contig)) {
      s.epoch = c.epoch;
      s.contig = c.contig;
    }
  }

  /** Where the device's frames are known safe (acked or adoptable), or undefined before any. */
  position(device: DeviceState): Cursor | undefined {
    const s = device.ack;
    return s !== undefined && s.epoch >= 0 ? { epoch: s.epoch, contig: s.contig } : undefined;
  }

  /**
   * True when the device's position in the cursor file covers (epoch, seq): what an ack for it
   * promises. JSON telemetry answers with it (gateway/json/safety.ts).
   */
  covers(device: DeviceState, epoch: number, seq: number): boolean {
    const s = device.ack;
    return s !== undefined && s.epoch === epoch && !s.unwritten && !after(seq, s.contig);
  }

  /** Calls `listener(now)` after each flush, once its cursors and acks went out. */
  onFlushed(listener: (now: number) => void): void {
    this.flushedListeners.push(listener);
  }

  /** A new frame was handed to storage under `ticket`: ack it once settled. */
  ingested(device: DeviceState, epoch: number, seq: number, ticket: number): void {
    const s = this.slot(device);
    this.lastTicket = ticket;
    if (s.unacked++ === 0) s.unackedSince = this.lastFlushAt;
    if (s.held && s.unacked >= this.opts.stretch!.frames) this.release(device);
    if (this.opts.ranges) s.noteRange(this.tick, ticket, epoch, seq);
    else {
      const cur = device.seq.current!;
      if (cur.epoch === epoch) s.noteCumulative(this.tick, ticket, cur.epoch, cur.contig);
      // A frame of the previous boot (kept across a reboot and resent): acked by its own epoch.
      else this.noteOldEpoch(device, s, ticket, epoch);
    }
  }

  /**
   * A replay of a frame already taken: it is safe already, or waiting in `unsettled`, so the ack
   * follows either way. A range-acked gateway re-acks the single seq once whatever it waits for is
   * settled. A replay may move the contiguous point (a resend that now carries GapBefore), and a
   * replay of the previous boot is re-acked by its own epoch: both once everything taken so far is settled.
   */
  duplicate(device: DeviceState, epoch: number, seq: number): void {
    const s = this.slot(device);
    s.owed = true;
    s.replayed = true;
    if (s.held) this.release(device);
    if (this.opts.ranges) {
      s.noteRange(this.tick, this.lastTicket, epoch, seq);
      return;
    }
    const cur = device.seq.current!;
    if (cur.epoch !== epoch) this.noteOldEpoch(device, s, this.lastTicket, epoch);
    else if (s.epoch !== epoch || after(cur.contig, s.contig)) s.noteCumulative(this.tick, this.lastTicket, epoch, cur.contig);
  }

  /**
   * A frame of an epoch that is not the device's newest (issue 15 point 1): its cumulative position
   * in the previous boot's dedupe window, acked with that epoch once settled. Never written to the
   * cursor file, which records the newest boot only.
   */
  private noteOldEpoch(device: DeviceState, s: AckSlot, ticket: number, epoch: number): void {
    const prev = device.seq.previous;
    if (prev !== undefined && prev.epoch === epoch) s.noteCumulative(this.tick, ticket, epoch, prev.contig);
  }

  /** The newest ticket an ack waits for: shutdown lets storage settle up to it. */
  get newestTicket(): number {
    return this.lastTicket;
  }

  start(): void {
    this.timer ??= setInterval(() => this.flush(Date.now()), this.opts.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.sendMore) clearImmediate(this.sendMore);
    this.sendMore = undefined;
  }

  /**
   * Moves what storage has settled into each queued device's durable position, appends the cursors
   * that moved in one write, and sends the acks. When the cursor write fails, the acks that depended
   * on it are not sent and their devices stay owed: the next flush writes and tries again. `final`
   * (shutdown) sends every ack now, whatever the device's send budget: there is no next flush.
   */
  flush(now: number, final = false): void {
    // The previous flush's acks first (all of them): acks of a device go out in order.
    if (this.sendingAt < this.sending.length) this.sendSlice(true, final);
    this.tick++;
    this.lastFlushAt = now;
    const q = this.queue;
    if (this.held.length > 0) this.releaseDue(now, final);
    const n = q.length;
    if (n === 0) {
      this.dueLastFlush = 0;
      this.flushed(now);
      return;
    }
    const st = this.opts.stretch;
    const stretching = st !== undefined && !final && this.dueLastFlush > st.above;
    let due = 0;
    // Only what storage has settled is acked, and only that reaches the cursor file: after a crash,
    // a frame that was ingested but never stored must come back as new, not as a duplicate.
    const durable = this.storage.durableTicket;
    const ranges = this.opts.ranges;
    let lines = '';
    const sending = this.sending;
    sending.length = 0;
    this.sendingUnacked.length = 0;
    for (let i = 0; i < n; i++) {
      const d = q[i]!;
      const s = d.ack!;
      if (s.settle(durable, ranges, d.seq.current?.epoch) || (ranges && s.settleWindow(d.seq.current))) s.unwritten = true;
      if (s.unwritten) s.owed = true;
      if (d.link && (s.owed || (s.ranges?.length ?? 0) > 0 || (s.old?.length ?? 0) > 0)) {
        due++;
        // A slow sender under load: the next ack covers this one's frames too (one syscall, not several).
        // Its cursor line waits with it: the file must be ahead of the acks, not of what is settled.
        if (stretching && !s.replayed && s.unacked < st.frames && now - s.unackedSince < st.maxDelayMs) {
          this.hold(d, s, s.unackedSince + st.maxDelayMs);
          this.acksStretched++;
          continue;
        }
      }
      if (s.unwritten) lines += this.cursors.set(d.id, s.epoch, s.contig);
      sending.push(d);
      this.sendingUnacked.push(s.unacked);
    }
    // Every device of the queue is now held or being sent; the ones that stay queued rejoin it as
    // they are sent (still `queued`, so new frames do not queue them twice meanwhile).
    q.length = 0;
    this.sendingWritten = lines === '' || this.cursors.append(lines);
    if (!this.sendingWritten) this.cursorFailures++;
    this.sendingAt = 0;
    this.sendingNow = now;
    this.dueLastFlush = due;
    this.sendSlice(final, final);
  }

  /**
   * Sends the next ACK_SLICE acks of the last flush (all of them when `all`), the rest at the next
   * loop turn. `final` (shutdown) sends whatever the device's send budget.
   */
  private sendSlice(all: boolean, final: boolean): void {
    const sending = this.sending;
    const end = all ? sending.length : Math.min(sending.length, this.sendingAt + ACK_SLICE);
    const written = this.sendingWritten;
    const now = this.sendingNow;
    const ranges = this.opts.ranges;
    for (let i = this.sendingAt; i < end; i++) {
      const d = sending[i]!;
      const s = d.ack!;
      if (s.unwritten) {
        if (!written) {
          this.queue.push(d);
          continue;
        }
        s.unwritten = false;
      }
      const link = d.link;
      if (link && (s.owed || (s.ranges?.length ?? 0) > 0 || (s.old?.length ?? 0) > 0)) {
        // Acks are cumulative: one not sent now is covered by the next, so a slow device costs no memory.
        if (!final && link.bufferedAmount() > this.opts.sendBudget) {
          this.queue.push(d);
          this.acksDeferred++;
          continue;
        }
        if (ranges) this.sendRanges(s, link, now);
        else {
          if (s.old !== undefined) this.sendOldAcks(s.old, link, now);
          if (s.epoch >= 0) this.sendAck(s.epoch, s.contig, link, now);
        }
        s.owed = false;
        s.replayed = false;
        // Frames taken since the flush are not covered by this ack: they count toward the next one.
        s.unacked = Math.max(0, s.unacked - this.sendingUnacked[i]!);
        if (s.unacked > 0) s.unackedSince = now;
      }
      if ((s.unsettled?.length ?? 0) > 0) this.queue.push(d);
      else s.queued = false;
    }
    this.sendingAt = end;
    if (end < sending.length) {
      this.sendMore ??= setImmediate(() => {
        this.sendMore = undefined;
        if (this.sendingAt < this.sending.length) this.sendSlice(false, false);
      });
      return;
    }
    sending.length = 0;
    this.sendingUnacked.length = 0;
    this.sendingAt = 0;
    this.flushed(now);
  }

  private flushed(now: number): void {
    const ls = this.flushedListeners;
    for (let i = 0; i < ls.length; i++) ls[i]!(now);
  }

  /** Takes a device out of the queue until the first flush at or after `dueAt` (or an earlier release). */
  private hold(d: DeviceState, s: AckSlot, dueAt: number): void {
    s.held = true;
    const slot = Math.min(this.releasedSlot + this.held.length - 1, Math.max(this.releasedSlot + 1, Math.ceil(dueAt / this.opts.intervalMs)));
    this.held[slot % this.held.length]!.push(d);
  }

  /** Stretched acks due by `now` (all of them at shutdown) rejoin the queue. */
  private releaseDue(now: number, all: boolean): void {
    const size = this.held.length;
    const upTo = Math.floor(now / this.opts.intervalMs);
    if (this.releasedSlot < 0) this.releasedSlot = upTo - 1;
    const from = all ? upTo - size + 1 : Math.max(this.releasedSlot + 1, upTo - size + 1);
    for (let slot = from; slot <= upTo + (all ? size : 0); slot++) {
      const bucket = this.held[((slot % size) + size) % size]!;
      for (let i = 0; i < bucket.length; i++) if (bucket[i]!.ack!.held) this.release(bucket[i]!);
      bucket.length = 0;
    }
    this.releasedSlot = Math.max(this.releasedSlot, upTo);
  }

  /** A held device rejoins the queue (its ack is due, or it needs one now). */
  private release(d: DeviceState): void {
    d.ack!.held = false;
    this.queue.push(d);
  }

  private slot(device: DeviceState): AckSlot {
    const s = (device.ack ??= new AckSlot());
    if (!s.queued) {
      s.queued = true;
      this.queue.push(device);
    }
    return s;
  }

  private sendAck(epoch: number, seq: number, link: DeviceLink, now: number): void {
    const h = this.header;
    h.epoch = epoch;
    h.seq = seq;
    h.timestamp = now;
    writeHeader(this.view, FrameType.Ack, h);
    link.send(this.buf);
    this.acksSent++;
  }

  /** Cumulative acks of earlier boots' epochs, before the newest boot's own. */
  private sendOldAcks(old: number[], link: DeviceLink, now: number): void {
    for (let i = 0; i < old.length; i += 2) this.sendAck(old[i]!, old[i + 1]!, link, now);
    old.length = 0;
  }

  /** Range acks for exactly the seqs this gateway took and stored (bridge mode), each with its frame's epoch. */
  private sendRanges(s: AckSlot, link: DeviceLink, now: number): void {
    const r = s.ranges;
    if (r === undefined) return;
    for (let i = 0; i < r.length; i += 3) {
      link.send(encodeAck({ epoch: r[i]!, seq: r[i + 2]!, timestamp: now }, r[i + 1]!));
      this.acksSent++;
    }
    r.length = 0;
  }
}
