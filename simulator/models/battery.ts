/** A battery that drains slowly and never recharges: a pure function of (seed, time). */
import { DAY, derive, unit } from './noise.js';

export interface BatteryProfile {
  /** Device time (ms) the level below refers to. */
  start: number;
  /** Level at `start`, %. */
  level: number;
  /** Drain, % per day. */
  perDay: number;
}

/** One device in twenty starts nearly flat, so a fleet shows low and dead batteries within days. */
export function batteryProfile(seed: number, start: number): BatteryProfile {
  const s = derive(seed, 0xba77);
  const low = unit(s, 0) < 0.05;
  return {
    start,
    level: low ? 2 + unit(s, 1) * 10 : 40 + unit(s, 1) * 60,
    perDay: 0.3 + unit(s, 2) * (low ? 1.7 : 1.2),
  };
}

/** Level in % at device time `t`: flat before `start`, then linear down to 0 and held there. */
export function batteryAt(p: BatteryProfile, t: number): number {
  const days = t > p.start ? (t - p.start) / DAY : 0;
  const v = p.level - days * p.perDay;
  return v > 0 ? v : 0;
}
