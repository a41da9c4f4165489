/** The sensor model of each device type in devices/device-types.ts. */
import { ClimateModel } from './climate.js';
import type { SensorModel } from './model.js';
import { PowerModel } from './power.js';
import { VibrationModel } from './vibration.js';

export type { SensorModel } from './model.js';
export { ClimateModel } from './climate.js';
export { PowerModel } from './power.js';
export { VibrationModel, DEFAULT_ALARM_THRESHOLD } from './vibration.js';
export { Faults, DEFAULT_FAULT_RATES, type FaultRates } from './faults.js';

/** Device types the simulator can model. */
export const MODELED_TYPES = ['climate', 'power', 'vibration'] as const;
export type ModeledType = (typeof MODELED_TYPES)[number];

export function isModeledType(type: string): type is ModeledType {
  return (MODELED_TYPES as readonly string[]).includes(type);
}

/** A model for one device: `seed` makes it differ from its siblings, `start` is its first day (device time). */
export function createModel(type: ModeledType, seed: number, start: number): SensorModel {
  switch (type) {
    case 'climate':
      return new ClimateModel(seed, start);
    case 'power':
      return new PowerModel(seed);
    case 'vibration':
      return new VibrationModel(seed, start);
  }
}
