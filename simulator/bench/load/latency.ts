/**
 * Device → dashboard latency: the sender notes when each probe id left (performance.now(), the same
 * process and clock as the dashboard), the dashboard looks the id up when the reading arrives.
 * Only frames sent inside the measurement window count.
 */
import { PROBE_IDS, probeId } from '../frames.js';

const SLOTS = 1 << 21;
/** sentAt of a probe whose first arrival was counted. */
const SEEN = -2;

export interface LatencySummary {
  samples: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export class LatencyRecorder {
  private readonly sentAt = new Float64Array(SLOTS).fill(-1);
  private samples = new Float64Array(1 << 20);
  private n = 0;
  windowStart = Infinity;
  windowEnd = Infinity;
  /** Readings whose probe id was unknown or reused (should stay 0). */
  unknown = 0;

  constructor() {
    if (SLOTS > PROBE_IDS) throw new Error('more latency slots than probe ids');
  }

  sent(id: number, at: number): void {
    this.sentAt[id & (SLOTS - 1)] = at;
  }

  /**
   * A probe value arrived at `at`. Only its first arrival counts: a dashboard may see one reading
   * twice (in the device's stream and in the fleet view), and the second is not a new sample.
   */
  received(value: number, at: number): void {
    const slot = probeId(value) & (SLOTS - 1);
    const sent = this.sentAt[slot]!;
    if (sent === SEEN) return;
    if (sent < 0) {
      this.unknown++;
      return;
    }
    this.sentAt[slot] = SEEN;
    if (sent < this.windowStart || sent >= this.windowEnd) return;
    if (this.n === this.samples.length) {
      const bigger = new Float64Array(this.samples.length * 2);
      bigger.set(this.samples);
      this.samples = bigger;
    }
    this.samples[this.n++] = (at - sent) * 1000;
  }

  summary(): LatencySummary {
    const s = this.samples.subarray(0, this.n).sort();
    return { samples: this.n, p50Us: quantile(s, 0.5), p99Us: quantile(s, 0.99), p999Us: quantile(s, 0.999), maxUs: this.n ? s[this.n - 1]! : NaN };
  }
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}
