/**
 * Flood with flow control: frames are written in pre-encoded blocks as fast as the server takes
 * them, but never more than a window of frames beyond what the server has counted (for the gateway:
 * acked), the way devices keep a bounded outbox. The window is `backlogMs` of the server's own
 * recent throughput (at least `minWindow` frames), so every server works through the same backlog
 * in time. Without a bound the kernel queues megabytes per connection, and every server's event
 * loop then spends seconds per turn reading them: acks, the dashboard and any request wait that
 * long, and nothing about the run is "sustained".
 * Devices take turns (round robin), a whole block per write (large batches, as the reference
 * generator of DESIGN.md wrote them), so at any moment the devices with a block in flight are the
 * active ones: window / block size of them. Two blocks per device; a block is rewritten only after
 * the kernel took it.
 */
import type { Socket } from 'node:net';
import type { FrameBlock } from '../frames.js';

export interface PumpTarget {
  socket: Socket;
  blocks: readonly FrameBlock[];
  /** Patches the first `count` packets of a block before they are written (fresh seqs). */
  refill(block: FrameBlock, count: number): void;
}

export class WindowedFlood {
  sent = 0;
  /** Times the window was full when there was a free block to send (the server was the limit). */
  windowFull = 0;
  private readonly free: boolean[][];
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private scheduled = false;
  /** (time, consumed) every 100 ms over the last second, for the throughput estimate. */
  private readonly history: { t: number; c: number }[] = [];
  private lastSample = 0;
  window: number;

  constructor(
    private readonly targets: readonly PumpTarget[],
    initialWindow: number,
    /** Frames the server has counted so far (polled; may lag). */
    private readonly consumed: () => number,
    private readonly backlogMs = 100,
    private readonly minWindow = 8192,
  ) {
    this.free = targets.map((t) => t.blocks.map(() => true));
    this.window = initialWindow;
  }

  start(): void {
    this.running = true;
    this.timer = setInterval(() => {
      this.resize();
      this.pump();
    }, 2);
    this.pump();
  }

  private resize(): void {
    const now = performance.now();
    if (now - this.lastSample < 100) return;
    this.lastSample = now;
    this.history.push({ t: now, c: this.consumed() });
    while (this.history.length > 11) this.history.shift();
    if (this.history.length < 6) return;
    const a = this.history[0]!;
    const b = this.history[this.history.length - 1]!;
    const rate = ((b.c - a.c) * 1000) / (b.t - a.t);
    this.window = Math.max(this.minWindow, Math.round((rate * this.backlogMs) / 1000));
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Call when the consumed count moved on (a counter update, an ack). */
  poke(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running) return;
    const n = this.targets.length;
    let budget = this.window - (this.sent - this.consumed());
    let idle = 0;
    while (idle < n) {
      const i = this.next;
      const t = this.targets[i]!;
      const free = this.free[i]!;
      const b = free.indexOf(true);
      if (b === -1 || t.socket.destroyed) {
        this.next = (i + 1) % n;
        idle++;
        continue;
      }
      const block = t.blocks[b]!;
      const count = block.count;
      if (budget < count) {
        this.windowFull++;
        return;
      }
      t.refill(block, count);
      free[b] = false;
      budget -= count;
      this.sent += count;
      idle = 0;
      this.next = (i + 1) % n;
      t.socket.write(block.buf, () => {
        free[b] = true;
        this.poke();
      });
    }
  }
}
