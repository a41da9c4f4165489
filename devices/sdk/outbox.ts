import { FrameFlag } from '../codec/types.js';

/** Byte offset of the flags in the frame header (see devices/codec/types.ts). */
const FLAGS_OFFSET = 2;
const HALF = 0x80000000;
const INITIAL_SLOTS = 64;

/** The u32 after `seq` (wraps from 0xFFFFFFFF to 0). */
export function nextSeq(seq: number): number {
  return (seq + 1) >>> 0;
}

/** True when `seq` is at or before `ack` in u32 serial-number arithmetic (RFC 1982). */
export function seqAtOrBefore(seq: number, ack: number): boolean {
  return (ack - seq) >>> 0 < HALF;
}

/**
 * Encoded telemetry frames that wait for an ack, oldest first (seqs strictly increasing in serial
 * arithmetic), at most `limit` of them. A ring buffer that grows by doubling up to `limit`, so a
 * quiet device does not hold `limit` slots.
 *
 * Frames are stored as encoded (never copied or re-encoded); the only write into them is the
 * GapBefore flag on the frame that becomes the oldest after a drop. The frames written to a
 * transport are always a prefix of the outbox: `unwritten` counts the rest.
 *
 * A cumulative ack releases from the head. A range ack (several gateways, each acking only the
 * frames it took) marks exactly its frames; marked frames leave once every older frame has left,
 * so the head is never a marked frame and `size - pending` frames are acked but still kept.
 */
export class Outbox {
  #frames: (Uint8Array | undefined)[] = [];
  #seqs: number[] = [];
  /** 1 where a range ack covered the frame in that slot. */
  #acked = new Uint8Array(0);
  #head = 0;
  #size = 0;
  #marked = 0;
  #unwritten = 0;
  #gapPending = false;
  /** The next pushed frame gets GapBefore (the newest frame was dropped by dropSeq). */
  #gapOnPush = false;
  #lastReleased: number | undefined;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`outbox limit must be an integer >= 1, got ${limit}`);
  }

  /** Frames kept: not acked yet, or acked by a range ack while an older frame is not. */
  get size(): number {
    return this.#size;
  }

  /** Frames kept that no ack has covered yet. */
  get pending(): number {
    return this.#size - this.#marked;
  }

  /** Seq of the newest frame an ack released so far (undefined before the first). */
  get lastReleased(): number | undefined {
    return this.#lastReleased;
  }

  get full(): boolean {
    return this.#size >= this.limit;
  }

  /** Frames at the end of the outbox that no transport has seen yet. */
  get unwritten(): number {
    return this.#unwritten;
  }

  /** Seq of the oldest frame, or undefined when empty. */
  get oldestSeq(): number | undefined {
    return this.#size === 0 ? undefined : this.#seqs[this.#head];
  }

  /** Appends a frame; `written` says whether it already went to a transport. The caller makes room first. */
  push(seq: number, frame: Uint8Array, written: boolean): void {
    if (this.full) throw new RangeError(`outbox is full (${this.limit} frames)`);
    if (this.#size === this.#frames.length) this.#grow();
    const i = (this.#head + this.#size) % this.#frames.length;
    this.#frames[i] = frame;
    this.#seqs[i] = seq;
    this.#acked[i] = 0;
    this.#size++;
    if (!written) this.#unwritten++;
    if (this.#gapOnPush) {
      frame[FLAGS_OFFSET]! |= FrameFlag.GapBefore;
      this.#gapOnPush = false;
    }
    this.#flagGap();
  }

  /**
   * Drops the `n` oldest frames no ack covers, for good (acked frames among them just leave), and
   * marks the frame that becomes the oldest (now or at the next push) with GapBefore, so the
   * gateway stops waiting for the dropped seqs. Returns how many were dropped.
   */
  dropOldest(n: number): number {
    let dropped = 0;
    while (dropped < n && this.#size > 0) {
      if (this.#acked[this.#head] === 0) dropped++;
      this.#removeHead();
    }
    this.#popAcked();
    if (dropped > 0) {
      this.#gapPending = true;
      this.#flagGap();
    }
    return dropped;
  }

  /**
   * Drops the one frame with this seq that no ack covers (the gateway refused it for good, e.g.
   * TIMESTAMP_OUT_OF_RANGE), and marks the frame kept right after it with GapBefore (now, or the
   * next pushed one when it was the newest), so the gateway stops waiting for that seq. Older
   * frames stay: a reconnect resends them first, before the flagged one. Returns whether it was kept.
   */
  dropSeq(seq: number): boolean {
    const cap = this.#frames.length;
    let k = 0;
    while (k < this.#size && this.#seqs[(this.#head + k) % cap] !== seq) k++;
    if (k === this.#size || this.#acked[(this.#head + k) % cap] !== 0) return false;
    if (k === 0) {
      this.#removeHead();
      this.#popAcked();
      this.#gapPending = true;
      this.#flagGap();
      return true;
    }
    const written = this.#size - this.#unwritten;
    for (let j = k; j < this.#size - 1; j++) {
      const to = (this.#head + j) % cap;
      const from = (this.#head + j + 1) % cap;
      this.#frames[to] = this.#frames[from];
      this.#seqs[to] = this.#seqs[from]!;
      this.#acked[to] = this.#acked[from]!;
    }
    const last = (this.#head + this.#size - 1) % cap;
    this.#frames[last] = undefined;
    this.#acked[last] = 0;
    this.#size--;
    if (k >= written) this.#unwritten--;
    if (k < this.#size) this.#frames[(this.#head + k) % cap]![FLAGS_OFFSET]! |= FrameFlag.GapBefore;
    else this.#gapOnPush = true;
    return true;
  }

  /** A cumulative ack: releases every frame whose seq is at or before `ack`. Returns how many frames left. */
  release(ack: number): number {
    let k = 0;
    while (this.#size > 0 && seqAtOrBefore(this.#seqs[this.#head]!, ack)) {
      this.#lastReleased = this.#seqs[this.#head];
      this.#removeHead();
      k++;
    }
    return k + this.#popAcked();
  }

  /**
   * A range ack: marks exactly the written frames with a seq in first..last (serial arithmetic; an
   * empty range when last is before first), then releases acked frames from the head. Frames before
   * the range stay until an ack covers them. Returns how many frames left.
   */
  releaseRange(first: number, last: number): number {
    if (this.#size === 0 || !seqAtOrBefore(first, last)) return 0;
    const head = this.#seqs[this.#head]!;
    if (!seqAtOrBefore(head, last)) return 0; // all released already
    const cap = this.#frames.length;
    const written = this.#size - this.#unwritten;
    const end = (last - head) >>> 0;
    // Distances from the head's seq grow with the index: binary search for the range's first frame.
    let k = 0;
    if (!seqAtOrBefore(first, head)) {
      const start = (first - head) >>> 0;
      let hi = written;
      while (k < hi) {
        const mid = (k + hi) >>> 1;
        if ((this.#seqs[(this.#head + mid) % cap]! - head) >>> 0 < start) k = mid + 1;
        else hi = mid;
      }
    }
    for (; k < written; k++) {
      const i = (this.#head + k) % cap;
      if ((this.#seqs[i]! - head) >>> 0 > end) break;
      if (this.#acked[i] === 0) {
        this.#acked[i] = 1;
        this.#marked++;
      }
    }
    return this.#popAcked();
  }

  /** Hands every frame no ack covers to `write`, oldest first; afterwards all count as written. Returns how many had been written before. */
  writeAll(write: (frame: Uint8Array) => void): number {
    const cap = this.#frames.length;
    const written = this.#size - this.#unwritten;
    let before = 0;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      if (this.#acked[i] !== 0) continue;
      write(this.#frames[i]!);
      if (k < written) before++;
    }
    this.#unwritten = 0;
    return before;
  }

  /** Copies of the frames no ack covers, oldest first, without changing anything (to persist them). */
  frames(): Uint8Array[] {
    const cap = this.#frames.length;
    const out: Uint8Array[] = [];
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      if (this.#acked[i] === 0) out.push(this.#frames[i]!.slice());
    }
    return out;
  }

  /** Releases marked frames at the head. Returns how many. */
  #popAcked(): number {
    let k = 0;
    while (this.#size > 0 && this.#acked[this.#head] !== 0) {
      this.#lastReleased = this.#seqs[this.#head];
      this.#removeHead();
      k++;
    }
    return k;
  }

  #removeHead(): void {
    const h = this.#head;
    if (this.#acked[h] !== 0) {
      this.#acked[h] = 0;
      this.#marked--;
    }
    this.#frames[h] = undefined;
    this.#head = (h + 1) % this.#frames.length;
    this.#size--;
    if (this.#unwritten > this.#size) this.#unwritten = this.#size;
  }

  #flagGap(): void {
    if (!this.#gapPending || this.#size === 0) return;
    this.#frames[this.#head]![FLAGS_OFFSET]! |= FrameFlag.GapBefore;
    this.#gapPending = false;
  }

  #grow(): void {
    const old = this.#frames;
    const cap = Math.min(this.limit, Math.max(INITIAL_SLOTS, old.length * 2));
    const frames: (Uint8Array | undefined)[] = new Array(cap);
    const seqs: number[] = new Array(cap);
    const acked = new Uint8Array(cap);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % old.length;
      frames[k] = old[i];
      seqs[k] = this.#seqs[i]!;
      acked[k] = this.#acked[i]!;
    }
    this.#frames = frames;
    this.#seqs = seqs;
    this.#acked = acked;
    this.#head = 0;
  }
}
