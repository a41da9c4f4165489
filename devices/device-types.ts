/**
 * Device types: what each channel of a device means (name, unit, value type, plausible range).
 * One declarative table shared by the gateway (channel names and units in the API and dashboard)
 * and the simulator (which models believable readings from it).
 */
import type { AlarmRule } from './api/json.js';
import type { ValueTypeName } from './codec/types.js';

export interface ChannelSpec {
  id: number;
  name: string;
  unit: string;
  type: ValueTypeName;
  /** Plausible range, for charts and the simulator. */
  min?: number;
  max?: number;
}

/** A command a device of the type accepts, with arguments it accepts (the dashboard offers it as a chip). */
export interface CommandSpec {
  name: string;
  /** Example arguments, valid for the device as they are. */
  args: unknown;
  hint: string;
}

export interface DeviceTypeSpec {
  type: string;
  name: string;
  channels: ChannelSpec[];
  /** What the type's devices answer (the simulator's devices accept exactly these, with these arguments). */
  commands: CommandSpec[];
  /**
   * Alarm rules every device of the type runs (id `type:<type>:<name>` unless given; deviceType is
   * the type's). Read-only through the API.
   */
  alarms?: AlarmRuleSpec[];
}

/** A type's alarm rule: an AlarmRule without what the type gives it. */
export type AlarmRuleSpec = Omit<AlarmRule, 'id' | 'source' | 'deviceType' | 'deviceId'> & { id?: string };

/** Any demo device that sends nothing for a minute (also while it is offline). */
const SILENT_60S: AlarmRuleSpec = { name: 'silent', severity: 'major', condition: { kind: 'silent', forMs: 60_000 } };

/** Every simulated device answers these (simulator/device.ts). */
const COMMON_COMMANDS: CommandSpec[] = [
  { name: 'set-interval', args: { ms: 1000 }, hint: 'change the sampling interval: {"ms": N} or {"hz": N}' },
  { name: 'reboot', args: null, hint: 'restart the device' },
];

export const DEVICE_TYPES: readonly DeviceTypeSpec[] = [
  {
    type: 'climate',
    name: 'Climate sensor',
    channels: [
      { id: 1, name: 'temperature', unit: '°C', type: 'f32', min: -20, max: 45 },
      { id: 2, name: 'humidity', unit: '%', type: 'f32', min: 0, max: 100 },
      { id: 3, name: 'battery', unit: '%', type: 'f32', min: 0, max: 100 },
    ],
    commands: COMMON_COMMANDS,
    alarms: [{ name: 'overheating', severity: 'critical', condition: { kind: 'above', channel: 1, threshold: 35, hysteresis: 1, forMs: 10_000 } }, SILENT_60S],
  },
  {
    type: 'power',
    name: 'Power meter',
    channels: [
      { id: 1, name: 'voltage', unit: 'V', type: 'f32', min: 210, max: 250 },
      { id: 2, name: 'current', unit: 'A', type: 'f32', min: 0, max: 32 },
      { id: 3, name: 'power', unit: 'W', type: 'f32', min: 0, max: 7500 },
      { id: 4, name: 'energy', unit: 'kWh', type: 'f64', min: 0 },
    ],
    commands: COMMON_COMMANDS,
    alarms: [SILENT_60S],
  },
  {
    type: 'vibration',
    name: 'Vibration monitor',
    channels: [
      { id: 1, name: 'velocity', unit: 'mm/s', type: 'f32', min: 0, max: 50 },
      { id: 2, name: 'peak', unit: 'g', type: 'f32', min: 0, max: 16 },
      { id: 3, name: 'alarm', unit: '', type: 'bool' },
      { id: 4, name: 'battery', unit: '%', type: 'f32', min: 0, max: 100 },
    ],
    commands: [...COMMON_COMMANDS, { name: 'set-threshold', args: { value: 12 }, hint: 'raise the alarm above this velocity (mm/s, 0 to 50)' }],
    alarms: [{ name: 'vibration', severity: 'major', condition: { kind: 'true', channel: 3 } }, SILENT_60S],
  },
];

const BY_TYPE = new Map(DEVICE_TYPES.map((t) => [t.type, t]));

export function deviceType(type: string | undefined): DeviceTypeSpec | undefined {
  return type === undefined ? undefined : BY_TYPE.get(type);
}

/**
 * A device's type: the registry's when it lists one, else the id's prefix before the first '-'
 * when that names a known type (fleet devices such as "climate-0042" need no registry entry).
 */
export function typeOfDevice(id: string, registryType?: string): string | undefined {
  if (registryType) return registryType;
  const dash = id.indexOf('-');
  const prefix = dash > 0 ? id.slice(0, dash) : undefined;
  return prefix && BY_TYPE.has(prefix) ? prefix : undefined;
}
