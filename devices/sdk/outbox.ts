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
 * Encoded telemetry frames that wait for an ack, oldest first, at most `limit` of them. A ring
 * buffer that grows by doubling up to `limit`, so a quiet device does not hold `limit` slots.
 *
 * Frames are stored as encoded (never copied or re-encoded); the only write into them is the
 * GapBefore flag on the frame that becomes the oldest after a drop. The frames written to a
 * transport are always a prefix of the outbox: `unwritten` counts the rest.
 */
export class Outbox {
  #frames: (Uint8Array | undefined)[] = [];
  #seqs: number[] = [];
  #head = 0;
  #size = 0;
  #unwritten = 0;
  #gapPending = false;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`outbox limit must be an integer >= 1, got ${limit}`);
  }

  /** Frames waiting for an ack. */
  get size(): number {
    return this.#size;
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
    this.#size++;
    if (!written) this.#unwritten++;
    this.#flagGap();
  }

  /**
   * Drops the `n` oldest frames for good and marks the frame that becomes the oldest (now or at the
   * next push) with GapBefore, so the gateway stops waiting for the dropped seqs. Returns how many went.
   */
  dropOldest(n: number): number {
    const dropped = this.#shift(n, undefined);
    if (dropped > 0) {
      this.#gapPending = true;
      this.#flagGap();
    }
    return dropped;
  }

  /** Releases every frame whose seq is at or before `ack` (a cumulative ack). Returns how many. */
  release(ack: number): number {
    return this.#shift(this.#size, ack);
  }

  /** Hands every frame to `write`, oldest first; afterwards all count as written. Returns how many had been written before. */
  writeAll(write: (frame: Uint8Array) => void): number {
    const cap = this.#frames.length;
    for (let k = 0; k < this.#size; k++) write(this.#frames[(this.#head + k) % cap]!);
    const before = this.#size - this.#unwritten;
    this.#unwritten = 0;
    return before;
  }

  /** Removes up to `n` frames from the head; with `ack`, only those at or before it. */
  #shift(n: number, ack: number | undefined): number {
    const cap = this.#frames.length;
    let k = 0;
    while (k < n && this.#size > 0) {
      if (ack !== undefined && !seqAtOrBefore(this.#seqs[this.#head]!, ack)) break;
      this.#frames[this.#head] = undefined;
      this.#head = (this.#head + 1) % cap;
      this.#size--;
      k++;
    }
    if (this.#unwritten > this.#size) this.#unwritten = this.#size;
    return k;
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
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % old.length;
      frames[k] = old[i];
      seqs[k] = this.#seqs[i]!;
    }
    this.#frames = frames;
    this.#seqs = seqs;
    this.#head = 0;
  }
}
