/**
 * Power meter on a single-phase feed: mains voltage around 230 V with slow drift and noise, a load
 * current that steps between appliance levels (standby, light, heavy) and is busier by day, power
 * = V·I, and an energy register that integrates power over time (the one piece of state).
 */
import { DEMO_DEVICE_TYPES, type DeviceTypeSpec } from '../../devices/device-types.js';
import type { SensorModel } from './model.js';
import { clamp, derive, gauss, HOUR, MINUTE, smooth, unit } from './noise.js';

export interface PowerProfile {
  /** Nominal voltage offset from 230 V (feeds differ a little). */
  voltageOffset: number;
  /** Length of one load step, ms. */
  stepMs: number;
  /** Shifts step boundaries so meters do not all switch at once. */
  phaseMs: number;
  /** Largest current of this installation, A (at most 30, so V·I stays within the schema's 7500 W). */
  maxAmps: number;
  utcOffsetH: number;
  voltageSeed: number;
  loadSeed: number;
  noiseSeed: number;
}

export function powerProfile(seed: number): PowerProfile {
  return {
    voltageOffset: (unit(seed, 1) - 0.5) * 6,
    stepMs: (2 + Math.floor(unit(seed, 2) * 9)) * MINUTE,
    phaseMs: Math.floor(unit(seed, 3) * 10 * MINUTE),
    maxAmps: 12 + unit(seed, 4) * 18,
    utcOffsetH: Math.floor(unit(seed, 5) * 6) - 2,
    voltageSeed: derive(seed, 1),
    loadSeed: derive(seed, 2),
    noiseSeed: derive(seed, 3),
  };
}

export function voltageAt(p: PowerProfile, t: number): number {
  return clamp(230 + p.voltageOffset + 3 * smooth(p.voltageSeed, t, 20 * MINUTE) + 0.7 * gauss(p.voltageSeed, t), 210, 250);
}

/** The load level (fraction of maxAmps) of the step that contains `t`: a piecewise-constant function. */
export function loadAt(p: PowerProfile, t: number): number {
  const step = Math.floor((t + p.phaseMs) / p.stepMs);
  const hour = (((t / HOUR + p.utcOffsetH) % 24) + 24) % 24;
  const daytime = hour >= 7 && hour < 22;
  const u = unit(p.loadSeed, step);
  // Standby most of the night; by day light loads, sometimes heavy ones (oven, heat pump, charger).
  const standby = daytime ? 0.3 : 0.7;
  if (u < standby) return 0.01 + 0.02 * unit(p.loadSeed ^ 1, step);
  if (u < standby + (1 - standby) * 0.65) return 0.08 + 0.25 * unit(p.loadSeed ^ 2, step);
  return 0.45 + 0.55 * unit(p.loadSeed ^ 3, step);
}

export function currentAt(p: PowerProfile, t: number): number {
  const level = loadAt(p, t) * p.maxAmps;
  return clamp(level * (1 + 0.02 * gauss(p.noiseSeed, t)), 0, 30);
}

/** Energy is counted over gaps up to this long; a longer silence (the meter was off) adds nothing. */
const MAX_INTEGRATION_MS = HOUR;
const MS_PER_HOUR = 3_600_000;

export class PowerModel implements SensorModel {
  readonly spec: DeviceTypeSpec = DEMO_DEVICE_TYPES.find((s) => s.type === 'power')!;
  readonly profile: PowerProfile;
  /** The energy register, kWh. */
  energyKWh: number;
  #lastT: number | undefined;

  constructor(seed: number) {
    this.profile = powerProfile(seed);
    this.energyKWh = Math.round(500 + unit(seed, 9) * 40_000);
  }

  sample(t: number, out: Float64Array): void {
    const p = this.profile;
    const v = voltageAt(p, t);
    const i = currentAt(p, t);
    const w = v * i;
    const last = this.#lastT;
    if (last !== undefined && t > last) this.energyKWh += (w * Math.min(t - last, MAX_INTEGRATION_MS)) / MS_PER_HOUR / 1000;
    if (last === undefined || t > last) this.#lastT = t;
    out[0] = v;
    out[1] = i;
    out[2] = w;
    out[3] = this.energyKWh;
  }
}
