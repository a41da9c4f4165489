/**
 * Rare sensor faults laid over a model's output: for a window, a channel stuck at one value,
 * dropping out, or drifting slowly away (a quarter of its range by the window's end, enough to cross
 * an alarm threshold: a climate sensor 16 °C too warm); and single-reading outliers near the end of
 * the channel's plausible range. Whether a window is faulty is a pure function of (seed, time); a
 * stuck value is the channel's value when the fault began (the one piece of state). Battery and
 * energy channels are left alone: they are meters whose monotony dashboards rely on. Values stay
 * within the schema's ranges. (A whole device falling silent is staged by `--incident`, not left to
 * chance: a test that counts every device's frames must not meet one by luck.)
 */
import type { ChannelSpec, DeviceTypeSpec } from '../../devices/device-types.js';
import { derive, MINUTE, unit } from './noise.js';

export interface FaultRates {
  /** Chance that a window holds a fault (stuck or dropout) on one channel. */
  window: number;
  /** Chance that one reading is an outlier. */
  outlier: number;
}

/** About one stuck, missing or drifting quarter hour per device every three to four days, one outlier in 2,000 readings. */
export const DEFAULT_FAULT_RATES: FaultRates = { window: 0.003, outlier: 0.0005 };
export const FAULT_WINDOW_MS = 15 * MINUTE;

/** What a faulty window does to its channel (anything else: drops it out). */
const STUCK = 0;
const DRIFT = 1;
const WINDOW_FAULTS = 3;
/** A drifting channel ends its window this share of its range away from where the model is. */
export const DRIFT_SHARE = 0.25;

/**
 * `value` moved `progress` (0..1) of the way to `target`: the shape of a slow drift (an ageing sensor,
 * a failing cooler), which the incident schedule uses too.
 */
export function driftTo(value: number, target: number, progress: number): number {
  const p = progress <= 0 ? 0 : progress >= 1 ? 1 : progress;
  return value + (target - value) * p;
}

function canMisbehave(c: ChannelSpec): boolean {
  return c.type !== 'bool' && c.name !== 'battery' && c.name !== 'energy' && c.min !== undefined && c.max !== undefined;
}

export class Faults {
  readonly #channels: readonly ChannelSpec[];
  /** Indexes of channels that may stick or spike. */
  readonly #eligible: number[];
  readonly #seed: number;
  readonly #rates: FaultRates;
  #stuckWindow = -1;
  #stuckValue = 0;
  /** Counts, for tests and curiosity. */
  readonly counts = { stuck: 0, dropouts: 0, drifts: 0, outliers: 0 };

  constructor(seed: number, spec: DeviceTypeSpec, rates: FaultRates = DEFAULT_FAULT_RATES) {
    this.#channels = spec.channels;
    this.#eligible = spec.channels.flatMap((c, i) => (canMisbehave(c) ? [i] : []));
    this.#seed = derive(seed, 0xfa17);
    this.#rates = rates;
  }

  /**
   * Applies the faults active at `t` to `out` (in place). Returns a bit mask of channel indexes to
   * leave out of this reading (dropout), 0 when every channel reports.
   */
  apply(t: number, out: Float64Array): number {
    const n = this.#eligible.length;
    if (n === 0) return 0;
    const s = this.#seed;
    const w = Math.floor(t / FAULT_WINDOW_MS);
    let dropped = 0;
    if (unit(s, w) < this.#rates.window) {
      const i = this.#eligible[Math.floor(unit(s ^ 1, w) * n)]!;
      const kind = Math.floor(unit(s ^ 2, w) * WINDOW_FAULTS);
      if (kind === STUCK) {
        if (this.#stuckWindow !== w) {
          this.#stuckWindow = w;
          this.#stuckValue = out[i]!;
        }
        out[i] = this.#stuckValue;
        this.counts.stuck++;
      } else if (kind === DRIFT) {
        const c = this.#channels[i]!;
        const v = out[i]!;
        out[i] = Math.min(c.max!, driftTo(v, v + (c.max! - c.min!) * DRIFT_SHARE, (t - w * FAULT_WINDOW_MS) / FAULT_WINDOW_MS));
        this.counts.drifts++;
      } else {
        dropped |= 1 << i;
        this.counts.dropouts++;
      }
    }
    if (unit(s ^ 3, t) < this.#rates.outlier) {
      const i = this.#eligible[Math.floor(unit(s ^ 4, t) * n)]!;
      const c = this.#channels[i]!;
      const u = unit(s ^ 5, t);
      const span = c.max! - c.min!;
      out[i] = u < 0.5 ? c.min! + span * 0.04 * u : c.max! - span * 0.04 * (u - 0.5);
      this.counts.outliers++;
    }
    return dropped;
  }
}
