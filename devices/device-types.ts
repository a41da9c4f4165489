/**
 * Device types: what each channel of a device means and which commands it accepts. The table comes
 * from a types file (README "Device types"): the gateway loads and watches it (gateway/types/), the
 * simulator reads it; until one is loaded, the built-in demo types (devices/types/demo.json) apply.
 *
 * One table per process (a gateway process serves one types file), replaced whole by
 * useDeviceTypes(), never edited: look types up at call time with deviceType() / typeOfDevice()
 * and do not keep a type's channels, so a reload reaches every reader. No I/O here.
 */
import demo from './types/demo.json' with { type: 'json' };
import { describeProblems, parseDeviceTypes } from './types/parse.js';
import type { DeviceTypeSpec } from './types/spec.js';

export type { ArgSchema, ArgsSchema, ChannelSpec, CommandSpec, DeviceTypeSpec } from './types/spec.js';

function parseDemo(): readonly DeviceTypeSpec[] {
  const parsed = parseDeviceTypes(demo);
  // Ours and covered by a test: a broken demo file is a build defect, not a user's error.
  if (!parsed.ok) throw new Error(`devices/types/demo.json is invalid: ${describeProblems(parsed.problems)}`);
  return parsed.types;
}

/** The built-in demo types (climate, power, vibration): what the simulator models. */
export const DEMO_DEVICE_TYPES: readonly DeviceTypeSpec[] = parseDemo();

let current: readonly DeviceTypeSpec[] = DEMO_DEVICE_TYPES;
let byType = new Map(current.map((t) => [t.type, t]));

/** The types in force now. */
export function deviceTypes(): readonly DeviceTypeSpec[] {
  return current;
}

/** Puts a checked table (parseDeviceTypes) in force; only the loaders (gateway/types/, simulator) call it. */
export function useDeviceTypes(types: readonly DeviceTypeSpec[]): void {
  current = types;
  byType = new Map(types.map((t) => [t.type, t]));
}

export function deviceType(type: string | undefined): DeviceTypeSpec | undefined {
  return type === undefined ? undefined : byType.get(type);
}

/**
 * A device's type: the registry's when it lists one, else the id's prefix before the first '-'
 * when that names a known type (fleet devices such as "climate-0042" need no registry entry).
 */
export function typeOfDevice(id: string, registryType?: string): string | undefined {
  if (registryType) return registryType;
  const dash = id.indexOf('-');
  const prefix = dash > 0 ? id.slice(0, dash) : undefined;
  return prefix && byType.has(prefix) ? prefix : undefined;
}
