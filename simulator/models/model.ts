import type { DeviceTypeSpec } from '../../devices/device-types.js';

/**
 * A sensor model: believable readings for one device of one type, as a function of time (plus, for
 * a few models, a little state such as an integrating energy meter or an alarm threshold).
 */
export interface SensorModel {
  readonly spec: DeviceTypeSpec;
  /**
   * Writes the value of every channel of `spec` at device time `t` (ms since 1970) into `out`, in
   * the order of spec.channels; booleans as 1 / 0. Never allocates.
   */
  sample(t: number, out: Float64Array): void;
}
