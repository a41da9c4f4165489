/**
 * Sends cumulative acks at most once per interval per device, after the dedupe cursor behind
 * each ack reached the cursor file: an ack the device got is never forgotten by a restart.
 */
import { encodeAck, FrameType, HEADER_BYTES, writeHeader } from '../devices/codec/index.js';
import type { CursorStore } from './cursors.js';
import type { DeviceState } from './devices.js';

export class AckScheduler {
  private timer: NodeJS.Timeout | undefined;
  private readonly buf = new Uint8Array(HEADER_BYTES);
  private readonly view = new DataView(this.buf.buffer);
  private readonly header = { epoch: 0, seq: 0, timestamp: 0 };
  acksSent = 0;
  acksDeferred = 0;

  constructor(
    private readonly queue: DeviceState[],
    private readonly cursors: CursorStore,
    private readonly intervalMs: number,
    /** Over this many buffered bytes toward a device, its ack waits for the next tick. */
    private readonly sendBudget: number,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.flush(Date.now()), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  flush(now: number): void {
    const q = this.queue;
    const n = q.length;
    if (n === 0) return;
    let lines = '';
    for (let i = 0; i < n; i++) {
      const d = q[i]!;
      const cur = d.seq.current;
      if (cur) lines += this.cursors.set(d.id, cur.epoch, cur.contig);
    }
    this.cursors.append(lines);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const d = q[i]!;
      const cur = d.seq.current;
      const link = d.link;
      if (!cur || !link) {
        d.ackDirty = false;
        continue;
      }
      // Acks are cumulative: one not sent now is replaced by the next, so a slow device costs no memory.
      if (link.bufferedAmount() > this.sendBudget) {
        q[kept++] = d;
        this.acksDeferred++;
        continue;
      }
      d.ackDirty = false;
      const h = this.header;
      if (d.ackRanges.length > 0) {
        this.sendRanges(d, cur.epoch, now);
        continue;
      }
      h.epoch = cur.epoch;
      h.seq = cur.contig;
      h.timestamp = now;
      writeHeader(this.view, FrameType.Ack, h);
      link.send(this.buf);
      this.acksSent++;
    }
    q.length = kept;
  }

  /** Range acks for exactly the seqs this gateway took (bridge mode). */
  private sendRanges(d: DeviceState, epoch: number, now: number): void {
    const r = d.ackRanges;
    for (let i = 0; i < r.length; i += 2) {
      d.link!.send(encodeAck({ epoch, seq: r[i + 1]!, timestamp: now }, r[i]!));
      this.acksSent++;
    }
    r.length = 0;
  }
}
