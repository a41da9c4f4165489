/**
 * Sends acks at most once per interval per device, for what storage has settled, after the dedupe
 * cursor behind each ack reached the cursor file: an ack the device got is never forgotten by a
 * restart, and never covers a reading that is only in memory.
 */
import { encodeAck, FrameType, HEADER_BYTES, writeHeader } from '../devices/codec/index.js';
import type { CursorStore } from './cursors.js';
import type { DeviceLink, DeviceState } from './devices.js';
import type { Storage } from './storage/storage.js';

export class AckScheduler {
  private timer: NodeJS.Timeout | undefined;
  private readonly buf = new Uint8Array(HEADER_BYTES);
  private readonly view = new DataView(this.buf.buffer);
  private readonly header = { epoch: 0, seq: 0, timestamp: 0 };
  acksSent = 0;
  acksDeferred = 0;

  constructor(
    private readonly ingest: { readonly ackQueue: DeviceState[]; tick: number },
    private readonly cursors: CursorStore,
    private readonly storage: Pick<Storage, 'durableTicket'>,
    private readonly intervalMs: number,
    /** Over this many buffered bytes toward a device, its ack waits for the next tick. */
    private readonly sendBudget: number,
    /** Range acks (bridge mode) instead of cumulative ones. */
    private readonly ranges: boolean,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.flush(Date.now()), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  flush(now: number): void {
    this.ingest.tick++;
    const q = this.ingest.ackQueue;
    const n = q.length;
    if (n === 0) return;
    // Only what storage has settled is acked, and only that reaches the cursor file: after a crash,
    // a frame that was ingested but never stored must come back as new, not as a duplicate.
    const durable = this.storage.durableTicket;
    let lines = '';
    for (let i = 0; i < n; i++) {
      const d = q[i]!;
      if (d.settle(durable, this.ranges)) {
        d.ackOwed = true;
        lines += this.cursors.set(d.id, d.durableEpoch, d.durableContig);
      }
    }
    // False when the cursor file could not take every byte (disk full, EIO): then no ack of this
    // flush goes out and every device stays owed, so a later flush acks once the file is whole again.
    const persisted = this.cursors.append(lines);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const d = q[i]!;
      const waiting = (d.unsettled?.length ?? 0) > 0;
      const link = d.link;
      if (link && (d.ackOwed || (d.ackRanges?.length ?? 0) > 0)) {
        if (!persisted) {
          q[kept++] = d;
          continue;
        }
        // Acks are cumulative: one not sent now is covered by the next, so a slow device costs no memory.
        if (link.bufferedAmount() > this.sendBudget) {
          q[kept++] = d;
          this.acksDeferred++;
          continue;
        }
        if (this.ranges) this.sendRanges(d, link, now);
        else if (d.durableEpoch >= 0) this.sendAck(d, link, now);
        d.ackOwed = false;
      }
      if (waiting) q[kept++] = d;
      else d.ackDirty = false;
    }
    q.length = kept;
  }

  private sendAck(d: DeviceState, link: DeviceLink, now: number): void {
    const h = this.header;
    h.epoch = d.durableEpoch;
    h.seq = d.durableContig;
    h.timestamp = now;
    writeHeader(this.view, FrameType.Ack, h);
    link.send(this.buf);
    this.acksSent++;
  }

  /** Range acks for exactly the seqs this gateway took and stored (bridge mode). */
  private sendRanges(d: DeviceState, link: DeviceLink, now: number): void {
    const r = d.ackRanges;
    if (r === undefined) return;
    const epoch = d.seq.current?.epoch ?? 0;
    for (let i = 0; i < r.length; i += 2) {
      link.send(encodeAck({ epoch, seq: r[i + 1]!, timestamp: now }, r[i]!));
      this.acksSent++;
    }
    r.length = 0;
  }
}
