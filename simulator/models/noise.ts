/**
 * Deterministic noise: every value is a pure function of (seed, n), so a model evaluated at the same
 * time twice gives the same reading and a test can replay a week in milliseconds. Integer hashing
 * only (murmur3's finalizer); no allocation.
 */

const TWO_32 = 0x1_0000_0000;

/** murmur3 fmix32: a good 32-bit avalanche. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A u32 from a seed and a non-negative integer (times in ms exceed 32 bits: both halves count). */
export function hash(seed: number, n: number): number {
  const hi = Math.floor(n / TWO_32);
  const lo = n >>> 0;
  return mix32((mix32((seed ^ Math.imul(hi, 0x9e3779b1)) >>> 0) ^ lo) + 0x6d2b79f5);
}

/** A seed derived from another one and a label number (one stream per channel or purpose). */
export function derive(seed: number, label: number): number {
  return mix32((seed + Math.imul(label + 1, 0x9e3779b9)) >>> 0);
}

/** Uniform in [0, 1). */
export function unit(seed: number, n: number): number {
  return hash(seed, n) / TWO_32;
}

/** Roughly standard normal (sum of four uniforms, scaled): cheap, bounded to ±3.46. */
export function gauss(seed: number, n: number): number {
  const a = hash(seed, n);
  const b = mix32(a ^ 0x27d4eb2f);
  // Four bytes-pairs of two hashes: four 16-bit uniforms.
  const s = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
  return (s / 65536 - 2) * 1.7320508075688772;
}

/** Smooth value noise in [-1, 1]: random values every `periodMs`, cosine-interpolated between. */
export function smooth(seed: number, t: number, periodMs: number): number {
  const x = t / periodMs;
  const k = Math.floor(x);
  const f = x - k;
  const w = (1 - Math.cos(f * Math.PI)) / 2;
  const a = unit(seed, k) * 2 - 1;
  const b = unit(seed, k + 1) * 2 - 1;
  return a + (b - a) * w;
}

/** A small seeded PRNG (mulberry32) for decisions that need no replay (chaos, phases). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32;
  };
}

export function clamp(v: number, min: number, max: number): number {
  return v < min ? min : v > max ? max : v;
}

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
