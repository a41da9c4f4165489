/**
 * Batches and tickets: the open batch the encoders write into, the sealed batches waiting in memory
 * (oldest first), and `durableTicket`, which follows the oldest batch not yet settled. Write n gets
 * ticket n; a batch carries the last ticket it holds. A batch is settled only when its points are
 * durable (stored, refused for good by the database, or fsync'd in the spill): nothing here drops.
 */
import { LineBuffer } from './line-protocol.js';

export class Batch {
  sending = false;
  settled = false;
  constructor(
    readonly body: Buffer,
    readonly points: number,
    /** The last ticket whose points this batch holds (0 for the first half of a split batch). */
    readonly lastTicket: number,
    readonly sealedAt: number,
  ) {}
}

interface Waiter {
  ticket: number;
  resolve: (durable: boolean) => void;
  timer: NodeJS.Timeout;
}

const EMPTY = Buffer.alloc(0);

export class Batches {
  /** The batch being filled: encoders write lines here, then commit(). */
  readonly open = new LineBuffer();
  /** Sealed batches, oldest first; settled ones leave from the head as durableTicket passes them. */
  readonly queue: Batch[] = [];
  private openPoints = 0;
  /** Last ticket added since the last seal; 0 when none. */
  private openTicket = 0;
  private ticket = 0;
  private durable = 0;
  /** Points in unsettled sealed batches. */
  private sealedPoints = 0;
  private readonly listeners: ((ticket: number) => void)[] = [];
  private waiters: Waiter[] = [];
  private notifyScheduled = false;

  get lastTicket(): number {
    return this.ticket;
  }

  get durableTicket(): number {
    return this.durable;
  }

  /** Points in memory not yet settled: sealed and open. */
  get buffered(): number {
    return this.sealedPoints + this.openPoints;
  }

  /** Points in unsettled sealed batches. */
  get sealed(): number {
    return this.sealedPoints;
  }

  /** Points in the open batch. */
  get opened(): number {
    return this.openPoints;
  }

  /** Takes the lines the encoder wrote into `open` as the next write; returns its ticket. */
  commit(points: number): number {
    this.openPoints += points;
    return (this.openTicket = ++this.ticket);
  }

  /** Seals the open batch (if any write came since the last seal). Empty ones settle at once. */
  seal(now: number): void {
    if (this.openTicket === 0) return;
    const points = this.openPoints;
    const b = new Batch(points > 0 ? this.open.take() : EMPTY, points, this.openTicket, now);
    this.openPoints = 0;
    this.openTicket = 0;
    this.queue.push(b);
    if (points === 0) {
      b.settled = true;
      this.advance();
      return;
    }
    this.sealedPoints += points;
  }

  /** The oldest unsettled batch. */
  oldest(): Batch | undefined {
    for (const b of this.queue) if (!b.settled) return b;
    return undefined;
  }

  unsettled(): Batch[] {
    return this.queue.filter((b) => !b.settled);
  }

  /** Marks a batch durable; advance() then moves durableTicket over it once older ones are too. */
  settle(b: Batch): void {
    if (b.settled) return;
    b.settled = true;
    this.sealedPoints -= b.points;
  }

  /** Puts the two halves of a refused batch in its place, so they go next. False when it is gone. */
  split(b: Batch, a: Buffer, na: number, c: Buffer, nc: number): boolean {
    const i = this.queue.indexOf(b);
    if (i === -1) return false;
    this.queue.splice(i, 1, new Batch(a, na, 0, b.sealedAt), new Batch(c, nc, b.lastTicket, b.sealedAt));
    this.sealedPoints += na + nc - b.points;
    return true;
  }

  /** Moves durableTicket over the settled batches at the head, and tells listeners and waiters (later, never inside a write). */
  advance(): void {
    const q = this.queue;
    let moved = false;
    while (q.length > 0 && q[0]!.settled) {
      const b = q.shift()!;
      if (b.lastTicket > this.durable) {
        this.durable = b.lastTicket;
        moved = true;
      }
    }
    if (!moved || this.notifyScheduled || (this.listeners.length === 0 && this.waiters.length === 0)) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      for (const l of this.listeners) l(this.durable);
      this.wake(false);
    });
  }

  onDurable(cb: (ticket: number) => void): void {
    this.listeners.push(cb);
  }

  whenDurable(ticket: number, timeoutMs: number): Promise<boolean> {
    if (ticket <= this.durable) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: Waiter = { ticket, resolve, timer: setTimeout(() => this.release(w, false), Math.max(0, timeoutMs)) };
      this.waiters.push(w);
    });
  }

  /** Answers every waiter: those now covered with true; with `all`, the rest with false (at close). */
  wake(all: boolean): void {
    for (const w of [...this.waiters]) if (all || w.ticket <= this.durable) this.release(w, w.ticket <= this.durable);
  }

  private release(w: Waiter, durable: boolean): void {
    const i = this.waiters.indexOf(w);
    if (i === -1) return;
    this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    w.resolve(durable);
  }
}
