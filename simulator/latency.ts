/**
 * Ack latency as a log-bucketed histogram: fixed size (LATENCY_BUCKETS counts, about 5% wide each),
 * no allocation per sample, and mergeable, so workers send theirs to the main thread as a small
 * array and percentiles of the whole fleet come out of the sum.
 */

const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
/** Bucket 0 holds samples up to 1 ms; bucket b ≥ 1 holds [GROWTH^(b-1), GROWTH^b) ms; the last one everything above (~1.5 h). */
export const LATENCY_BUCKETS = 360;

export function bucketOf(ms: number): number {
  if (!(ms > 1)) return 0;
  const b = 1 + Math.floor(Math.log(ms) / LOG_GROWTH);
  return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

/** The value a bucket stands for: its geometric middle (0.5 ms for bucket 0). */
export function bucketValue(b: number): number {
  return b === 0 ? 0.5 : GROWTH ** (b - 0.5);
}

export function newHistogram(): Uint32Array {
  return new Uint32Array(LATENCY_BUCKETS);
}

export function record(h: Uint32Array, ms: number): void {
  h[bucketOf(ms)]!++;
}

export function addInto(into: Uint32Array, from: ArrayLike<number>): void {
  for (let i = 0; i < LATENCY_BUCKETS; i++) into[i]! += from[i] ?? 0;
}

/** `a - b` per bucket (the samples taken between two cumulative snapshots). */
export function difference(a: ArrayLike<number>, b: ArrayLike<number>): Uint32Array {
  const out = newHistogram();
  for (let i = 0; i < LATENCY_BUCKETS; i++) out[i] = Math.max(0, (a[i] ?? 0) - (b[i] ?? 0));
  return out;
}

export function total(h: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < h.length; i++) n += h[i]!;
  return n;
}

/** The p-th percentile (0 < p ≤ 100) in ms, rounded to 0.1 ms; null without samples. */
export function percentile(h: ArrayLike<number>, p: number): number | null {
  const n = total(h);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    seen += h[i]!;
    if (seen >= rank) return Math.round(bucketValue(i) * 10) / 10;
  }
  return Math.round(bucketValue(h.length - 1) * 10) / 10;
}
