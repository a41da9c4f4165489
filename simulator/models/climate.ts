/**
 * Climate sensor: temperature with a daily cycle (warmest mid-afternoon, local time), a slow
 * weather drift and sensor noise; relative humidity moving against temperature (warm air holds
 * more water, so the same air reads drier); a slowly draining battery.
 */
import { DEMO_DEVICE_TYPES, type DeviceTypeSpec } from '../../devices/device-types.js';
import { batteryAt, batteryProfile, type BatteryProfile } from './battery.js';
import type { SensorModel } from './model.js';
import { clamp, DAY, derive, gauss, HOUR, smooth, unit } from './noise.js';

export interface ClimateProfile {
  /** Mean temperature, °C. */
  mean: number;
  /** Half the day-night swing, °C. */
  swing: number;
  /** Local time = UTC + this many hours. */
  utcOffsetH: number;
  /** Mean relative humidity, %. */
  humidity: number;
  tempSeed: number;
  weatherSeed: number;
  humiditySeed: number;
  battery: BatteryProfile;
}

/** Hour of the day when it is warmest. */
const PEAK_HOUR = 15;
/** Humidity points per °C of temperature swing (negative correlation). */
const RH_PER_DEGREE = -2.8;

export function climateProfile(seed: number, start: number): ClimateProfile {
  return {
    mean: 4 + unit(seed, 1) * 18,
    swing: 2.5 + unit(seed, 2) * 5,
    utcOffsetH: Math.floor(unit(seed, 3) * 6) - 2,
    humidity: 45 + unit(seed, 4) * 30,
    tempSeed: derive(seed, 1),
    weatherSeed: derive(seed, 2),
    humiditySeed: derive(seed, 3),
    battery: batteryProfile(seed, start),
  };
}

/** Temperature swing around the mean (daily cycle + weather), before sensor noise. */
function swingAt(p: ClimateProfile, t: number): number {
  const hour = (((t / HOUR + p.utcOffsetH) % 24) + 24) % 24;
  const daily = p.swing * Math.cos(((hour - PEAK_HOUR) / 24) * 2 * Math.PI);
  const weather = 4 * smooth(p.weatherSeed, t, 6 * HOUR) + 3 * smooth(p.weatherSeed ^ 0x5eed, t, 3 * DAY);
  return daily + weather;
}

export function temperatureAt(p: ClimateProfile, t: number): number {
  return clamp(p.mean + swingAt(p, t) + 0.12 * gauss(p.tempSeed, t), -20, 45);
}

export function humidityAt(p: ClimateProfile, t: number): number {
  const v = p.humidity + RH_PER_DEGREE * swingAt(p, t) + 4 * smooth(p.humiditySeed, t, 2 * HOUR) + 0.6 * gauss(p.humiditySeed, t);
  return clamp(v, 0, 100);
}

export class ClimateModel implements SensorModel {
  readonly spec: DeviceTypeSpec = DEMO_DEVICE_TYPES.find((s) => s.type === 'climate')!;
  readonly profile: ClimateProfile;

  constructor(seed: number, start: number) {
    this.profile = climateProfile(seed, start);
  }

  sample(t: number, out: Float64Array): void {
    const p = this.profile;
    out[0] = temperatureAt(p, t);
    out[1] = humidityAt(p, t);
    out[2] = batteryAt(p.battery, t);
  }
}
