/**
 * Durations of retention policies: InfluxQL (`30d`, `52w`, `1h30m`, `INF`) as given to
 * --influx-retention, and Go's (`720h0m0s`, `0s`) as SHOW RETENTION POLICIES answers.
 */
const UNIT_MS: Record<string, number> = { ns: 1e-6, u: 1e-3, µ: 1e-3, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The duration in ms; 0 for forever (`INF`, `0s`, empty). Throws a RangeError for anything else. */
export function durationMs(text: string): number {
  const s = text.trim();
  if (s === '' || s.toUpperCase() === 'INF') return 0;
  let total = 0;
  let rest = s;
  const part = /^(\d+(?:\.\d+)?)(ns|us|µs|u|µ|ms|s|m|h|d|w)/;
  while (rest !== '') {
    const m = part.exec(rest);
    if (!m) throw new RangeError(`"${text}" is not a duration (e.g. 30d, 52w, 720h0m0s, INF)`);
    total += Number(m[1]) * UNIT_MS[m[2] === 'µs' ? 'us' : m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.floor(total);
}
