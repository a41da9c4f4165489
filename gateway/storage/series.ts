/**
 * Time series for the in-memory store, kept in fixed-size chunks carved out of large shared
 * Float64Array slabs. Growing or trimming a series takes or returns a chunk (a number on a free
 * list); no per-series buffer is ever allocated, copied or collected. (Per-series typed arrays
 * grown by doubling, and then plain arrays, made the garbage collector the store's main cost at
 * ingest rates: every growth was a new buffer, and every point lived in a heap V8 kept compacting.)
 */
import type { HistoryBucket } from './storage.js';

/** Points per chunk: the least a series with data takes (1 KB for times and values). */
const CHUNK = 64;
const SHIFT = 6;
const MASK = CHUNK - 1;
/** Chunks per slab: 8 MB slabs. */
const SLAB_CHUNKS = 8192;

/** The chunks all series of one store share. A chunk: CHUNK times, then CHUNK values. */
export class ChunkPool {
  readonly slabs: Float64Array[] = [];
  private readonly free: number[] = [];
  private next = 0;

  take(): number {
    const id = this.free.pop();
    if (id !== undefined) return id;
    if (this.next === this.slabs.length * SLAB_CHUNKS) this.slabs.push(new Float64Array(SLAB_CHUNKS * 2 * CHUNK));
    return this.next++;
  }

  give(id: number): void {
    this.free.push(id);
  }

  /** Chunks handed out now (for tests and health). */
  get used(): number {
    return this.next - this.free.length;
  }
}

/** One (device, channel): time-sorted, at most `max` points, the oldest dropped first. */
export class Series {
  /** Chunk ids, oldest first. */
  private readonly chunks: number[] = [];
  /** Points already dropped from the oldest chunk. */
  private first = 0;
  len = 0;

  constructor(
    private readonly pool: ChunkPool,
    private readonly max: number,
  ) {}

  // Logical index i → the slab and the offsets of its time and value.
  private slab(i: number): Float64Array {
    const id = this.chunks[(this.first + i) >> SHIFT]!;
    return this.pool.slabs[(id / SLAB_CHUNKS) | 0]!;
  }
  private timeAt(i: number): number {
    const g = this.first + i;
    const id = this.chunks[g >> SHIFT]!;
    return (id % SLAB_CHUNKS) * 2 * CHUNK + (g & MASK);
  }

  time(i: number): number {
    return this.slab(i)[this.timeAt(i)]!;
  }
  value(i: number): number {
    return this.slab(i)[this.timeAt(i) + CHUNK]!;
  }
  private set(i: number, t: number, v: number): void {
    const s = this.slab(i);
    const o = this.timeAt(i);
    s[o] = t;
    s[o + CHUNK] = v;
  }

  /** Logical index of the first point with time >= t. */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.time(mid) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(t: number, v: number): void {
    const n = this.len;
    if (n > 0) {
      const lastT = this.time(n - 1);
      if (t === lastT) {
        this.set(n - 1, t, v);
        return;
      }
      if (t < lastT) {
        this.insertLate(t, v);
        return;
      }
    }
    this.append(t, v);
    this.trim();
  }

  /** A point older than the newest: shift the newer ones up by one (rare, and bounded by the window the dedupe allows). */
  private insertLate(t: number, v: number): void {
    const k = this.lowerBound(t);
    if (k < this.len && this.time(k) === t) {
      this.set(k, t, v);
      return;
    }
    if (k === 0 && this.len >= this.max) return; // older than everything a full series keeps
    this.append(0, 0);
    for (let j = this.len - 1; j > k; j--) this.set(j, this.time(j - 1), this.value(j - 1));
    this.set(k, t, v);
    this.trim();
  }

  private append(t: number, v: number): void {
    if (((this.first + this.len) & MASK) === 0 && this.first + this.len === this.chunks.length * CHUNK) this.chunks.push(this.pool.take());
    this.len++;
    this.set(this.len - 1, t, v);
  }

  private trim(): void {
    if (this.len <= this.max) return;
    this.len--;
    if (++this.first === CHUNK) {
      this.pool.give(this.chunks.shift()!);
      this.first = 0;
    }
  }

  /** Returns every chunk to the pool. */
  release(): void {
    for (const id of this.chunks) this.pool.give(id);
    this.chunks.length = 0;
    this.first = 0;
    this.len = 0;
  }

  buckets(from: number, to: number, points: number): HistoryBucket[] {
    const lo = this.lowerBound(from);
    const hi = this.lowerBound(to + 1);
    const n = hi - lo;
    const out: HistoryBucket[] = [];
    if (n <= 0) return out;
    if (n <= points) {
      for (let i = lo; i < hi; i++) {
        const v = this.value(i);
        out.push({ t: this.time(i), mean: v, min: v, max: v, count: 1 });
      }
      return out;
    }
    // Fixed-width time buckets, as InfluxQL GROUP BY time() gives; empty buckets are left out.
    const width = Math.max(1, Math.ceil((to - from + 1) / points));
    let cur: HistoryBucket | undefined;
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const t = this.time(i);
      const v = this.value(i);
      const b = from + Math.floor((t - from) / width) * width;
      if (cur === undefined || cur.t !== b) {
        if (cur) cur.mean = sum / cur.count;
        cur = { t: b, mean: v, min: v, max: v, count: 0 };
        sum = 0;
        out.push(cur);
      }
      cur.count++;
      sum += v;
      if (v < cur.min) cur.min = v;
      if (v > cur.max) cur.max = v;
    }
    if (cur) cur.mean = sum / cur.count;
    return out;
  }
}
