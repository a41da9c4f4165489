/**
 * The arithmetic of the scaling section, pure so it is unit-tested: how many workers to try on
 * this machine, how the fleet is split over instances, CPU per frame, and how rounds combine.
 */

/** The most workers worth trying here: one core left for the load generator, at least 2. */
export function maxWorkers(cores: number): number {
  return Math.max(2, cores - 1);
}

/**
 * Worker counts of the saturation table: every count up to 8 (where the issue asks for near-linear
 * growth), then powers of two, then the machine's maximum, so a 64-core run stays within its budget.
 */
export function saturationWorkerCounts(cores: number): number[] {
  const max = maxWorkers(cores);
  const out: number[] = [];
  for (let n = 1; n <= Math.min(8, max); n++) out.push(n);
  for (let n = 16; n < max; n *= 2) out.push(n);
  if (out[out.length - 1] !== max) out.push(max);
  return out;
}

/** `devices` split into `parts` contiguous slices, as even as can be (the first ones one larger). */
export function fleetSlices(devices: number, parts: number): { first: number; count: number }[] {
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`fleetSlices: parts must be a positive integer, got ${parts}`);
  const base = Math.floor(devices / parts);
  const extra = devices % parts;
  const out: { first: number; count: number }[] = [];
  let first = 0;
  for (let i = 0; i < parts; i++) {
    const count = base + (i < extra ? 1 : 0);
    out.push({ first, count });
    first += count;
  }
  return out;
}

/** CPU-seconds per million frames from cores used (CPU-s per s) and frames per second. */
export function cpuPerMillion(cores: number, framesPerSec: number): number {
  return framesPerSec > 0 ? (cores / framesPerSec) * 1e6 : NaN;
}

export function median(xs: readonly number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * a / b per round, for the rounds both have (by round number): each pair ran minutes apart at most,
 * on about the same machine speed, so the ratio cancels a slow spell of a shared machine that
 * a ratio of two medians would not. `x` is the median of the per-round ratios.
 */
export function roundRatios(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): { x: number; rounds: number[] } {
  const rounds: number[] = [];
  for (const [round, va] of [...a].sort((p, q) => p[0] - q[0])) {
    const vb = b.get(round);
    if (vb !== undefined && vb > 0 && Number.isFinite(va)) rounds.push(va / vb);
  }
  return { x: median(rounds), rounds };
}

/**
 * Below saturation means the gateway took what was offered. 10% slack: the acks of a window are
 * counted by flush time, the writes by the generator's clock, and a generator starved by a busy
 * machine writes in catch-up bursts, so the two spans differ by a flush and a burst at each end.
 */
export function keptUp(ingested: number, offered: number): boolean {
  return ingested >= 0.9 * offered;
}
