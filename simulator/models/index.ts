/** The sensor model of each demo device type (devices/types/demo.json), and models for a types file's types. */
import { ClimateModel } from './climate.js';
import type { SensorModel } from './model.js';
import { PowerModel } from './power.js';
import { TypesFileModel } from './from-types.js';
import { VibrationModel } from './vibration.js';
import type { DeviceTypeSpec } from '../../devices/device-types.js';

export type { SensorModel } from './model.js';
export { ClimateModel } from './climate.js';
export { PowerModel } from './power.js';
export { VibrationModel, DEFAULT_ALARM_THRESHOLD } from './vibration.js';
export { Faults, DEFAULT_FAULT_RATES, type FaultRates } from './faults.js';
export { TypesFileModel } from './from-types.js';

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

/** A model for one device of a types file's type: the known model where there is one, plausible values elsewhere. */
export function modelFor(spec: DeviceTypeSpec, seed: number, start: number): TypesFileModel {
  return new TypesFileModel(spec, isModeledType(spec.type) ? createModel(spec.type, seed, start) : undefined, seed);
}
