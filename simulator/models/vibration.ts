/**
 * Vibration monitor on a machine: a low running level (RMS velocity, mm/s) with slow wander and
 * noise, and now and then a burst (bearing knock, resonance, a passing forklift) that rises and
 * falls within seconds. Peak acceleration follows velocity; the alarm is on while velocity is over
 * the threshold (ISO 10816-3 "unsatisfactory" for medium machines: 4.5 mm/s; we default to a less
 * chatty 11.2, "unacceptable"), which the set-threshold command changes. Battery drains slowly.
 */
import { DEMO_DEVICE_TYPES, type DeviceTypeSpec } from '../../devices/device-types.js';
import { batteryAt, batteryProfile, type BatteryProfile } from './battery.js';
import type { SensorModel } from './model.js';
import { clamp, derive, gauss, MINUTE, smooth, unit } from './noise.js';

export const DEFAULT_ALARM_THRESHOLD = 11.2;
/** Bursts may start at the beginning of each window of this length. */
const BURST_WINDOW_MS = 20_000;

export interface VibrationProfile {
  /** Running level, mm/s. */
  base: number;
  /** Chance that a window holds a burst. */
  burstChance: number;
  baseSeed: number;
  burstSeed: number;
  noiseSeed: number;
  battery: BatteryProfile;
}

export function vibrationProfile(seed: number, start: number): VibrationProfile {
  return {
    base: 0.8 + unit(seed, 1) * 2.2,
    burstChance: 0.01 + unit(seed, 2) * 0.03,
    baseSeed: derive(seed, 1),
    burstSeed: derive(seed, 2),
    noiseSeed: derive(seed, 3),
    battery: batteryProfile(seed, start),
  };
}

/** The burst part of velocity at `t` (0 outside bursts): a half-sine 2–12 s long, 8–40 mm/s high. */
export function burstAt(p: VibrationProfile, t: number): number {
  const w = Math.floor(t / BURST_WINDOW_MS);
  if (unit(p.burstSeed, w) >= p.burstChance) return 0;
  const into = t - w * BURST_WINDOW_MS;
  const length = 2000 + unit(p.burstSeed ^ 1, w) * 10_000;
  if (into >= length) return 0;
  const height = 8 + unit(p.burstSeed ^ 2, w) * 32;
  return height * Math.sin((into / length) * Math.PI);
}

export function velocityAt(p: VibrationProfile, t: number): number {
  const running = p.base * (1 + 0.25 * smooth(p.baseSeed, t, 5 * MINUTE)) + 0.08 * p.base * gauss(p.noiseSeed, t);
  return clamp(running + burstAt(p, t), 0, 50);
}

export function peakAt(p: VibrationProfile, t: number, velocity: number): number {
  return clamp(0.05 + velocity * 0.2 * (1 + 0.1 * gauss(p.noiseSeed ^ 7, t)), 0, 16);
}

export class VibrationModel implements SensorModel {
  readonly spec: DeviceTypeSpec = DEMO_DEVICE_TYPES.find((s) => s.type === 'vibration')!;
  readonly profile: VibrationProfile;
  /** Velocity (mm/s) above which the alarm channel is on. */
  threshold = DEFAULT_ALARM_THRESHOLD;

  constructor(seed: number, start: number) {
    this.profile = vibrationProfile(seed, start);
  }

  sample(t: number, out: Float64Array): void {
    out[0] = velocityAt(this.profile, t);
    this.follow(t, out);
    out[3] = batteryAt(this.profile.battery, t);
  }

  /** Sets the channels that follow velocity (peak, alarm) from out[0]: after sample(), or after an incident changed velocity. */
  follow(t: number, out: Float64Array): void {
    const v = out[0]!;
    out[1] = peakAt(this.profile, t, v);
    out[2] = v > this.threshold ? 1 : 0;
  }
}
