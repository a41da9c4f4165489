/**
 * Channel names and units from the gateway's device types (GET /api/device-types at start, then the
 * live `types` stream after every reload of the gateway's types file). A device without a known
 * type still shows its channels, as "channel N".
 */
import { listDeviceTypes } from './api.js';
import type { ChannelSpec, CommandSpec, DeviceTypeSpec } from './types.js';

export interface ChannelInfo {
  id: number;
  name: string;
  unit: string;
  /** Value type: 'f32', 'f64', 'i32', 'bool', or '' when unknown. */
  type: string;
  min?: number;
  max?: number;
}

let types = new Map<string, DeviceTypeSpec>();
const listeners = new Set<() => void>();

/** Loads the types at start; without them (older gateway) every channel is "channel N". */
export async function loadDeviceTypes(): Promise<void> {
  try {
    applyDeviceTypes(await listDeviceTypes());
  } catch (err) {
    console.warn('device types unavailable; channels are shown by number', err);
  }
}

/** Puts the gateway's current types in force (a `types` live message) and tells the views. */
export function applyDeviceTypes(list: readonly DeviceTypeSpec[]): void {
  types = new Map(list.map((t) => [t.type, t]));
  for (const l of [...listeners]) l();
}

/** Called after every change of the types; returns the function that stops it. */
export function onDeviceTypes(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The commands a type's devices accept (none for an unknown type). */
export function commandsOf(type: string | null | undefined): readonly CommandSpec[] {
  return (type ? types.get(type)?.commands : undefined) ?? [];
}

export function typeName(type: string | null | undefined): string {
  if (!type) return '';
  return types.get(type)?.name ?? type;
}

function fromSpec(c: ChannelSpec): ChannelInfo {
  const info: ChannelInfo = { id: c.id, name: c.name, unit: c.unit ?? '', type: c.type ?? '' };
  if (c.min !== undefined) info.min = c.min;
  if (c.max !== undefined) info.max = c.max;
  return info;
}

export function channelInfo(type: string | null | undefined, id: number): ChannelInfo {
  const spec = type ? types.get(type)?.channels.find((c) => c.id === id) : undefined;
  return spec ? fromSpec(spec) : { id, name: `channel ${id}`, unit: '', type: '' };
}

/** The type's channels plus any others the device has sent, by id. */
export function channelsOf(type: string | null | undefined, seen: Iterable<string | number> = []): ChannelInfo[] {
  const byId = new Map<number, ChannelInfo>();
  const spec = type ? types.get(type) : undefined;
  for (const c of spec?.channels ?? []) byId.set(c.id, fromSpec(c));
  for (const k of seen) {
    const id = Number(k);
    if (Number.isInteger(id) && !byId.has(id)) byId.set(id, channelInfo(type, id));
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** The channel a fleet row's sparkline follows: the type's first numeric channel, else the lowest one seen. */
export function primaryChannel(type: string | null | undefined, seen: string[]): string | undefined {
  const spec = type ? types.get(type) : undefined;
  const first = spec?.channels.find((c) => c.type !== 'bool');
  if (first) return String(first.id);
  let best: number | undefined;
  for (const k of seen) {
    const n = Number(k);
    if (Number.isInteger(n) && (best === undefined || n < best)) best = n;
  }
  return best === undefined ? undefined : String(best);
}
