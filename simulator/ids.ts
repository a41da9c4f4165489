/** Device ids of a simulated fleet: `<type>-<prefix><n, 4 digits>`; the gateway reads the type from the part before the first '-'. */

/** The type of fleet device number `index` (0-based): types take turns. */
export function typeOfIndex(types: readonly string[], index: number): string {
  return types[index % types.length]!;
}

/** The id of fleet device number `index` (0-based); numbers count per type from 1. */
export function deviceIdOf(types: readonly string[], index: number, prefix = ''): string {
  const n = Math.floor(index / types.length) + 1;
  return `${typeOfIndex(types, index)}-${prefix}${String(n).padStart(4, '0')}`;
}
