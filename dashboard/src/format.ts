/** Text for times, durations and values, in the browser's locale. */

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local wall-clock time, HH:MM:SS. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local wall-clock time with milliseconds, HH:MM:SS.mmm. */
export function clockMs(ms: number): string {
  return `${clock(ms)}.${pad(new Date(ms).getMilliseconds(), 3)}`;
}

/** "3 s ago", "5 min ago", "2 h ago", "never". */
export function ago(ms: number | null | undefined, now: number): string {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** "850 ms", "12.3 s", "4 min 10 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m} min ${s} s` : `${m} min`;
}

const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** 1234567 → "1.2M"; small numbers stay whole. */
export function compact(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return Math.abs(n) < 10_000 ? intFmt.format(n) : compactFmt.format(n);
}

/**
 * A reading as the device sent it (bools as on/off) and its unit: an energy register of 14002.17 kWh
 * must not read "14000 kWh". Up to 7 significant digits (what an f32 carries, so 21.5 sent as f32
 * shows 21.5, not 21.5000001), whole numbers in full; a dot for the decimals and no grouping in
 * every locale, so the numbers read the same on every screen and in every bug report.
 */
export function reading(value: number | boolean | undefined, unit = ''): string {
  if (value === undefined) return '–';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  const text = plainNumber(value);
  return unit ? `${text} ${unit}` : text;
}

function plainNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 1e15) return String(value);
  if (abs >= 1e7 && abs < 1e15) return String(Math.round(value));
  return String(Number(value.toPrecision(7)));
}

/**
 * Labels for a chart axis's ticks: as many decimals as the tick spacing needs, the same for every
 * tick, so neighbours never share a label ("74.1934", "74.1935", … rather than "74.19" six times).
 */
export function axisLabels(values: readonly number[]): string[] {
  if (values.length === 0) return [];
  let step = Infinity;
  for (let i = 1; i < values.length; i++) {
    const d = Math.abs(values[i]! - values[i - 1]!);
    if (d > 0 && d < step) step = d;
  }
  const scale = Math.max(...values.map(Math.abs));
  if (scale >= 1e15 || (scale > 0 && scale < 1e-9)) return values.map((v) => v.toExponential(3));
  // The fewest decimals (up to 10) at which each tick is written exactly, to a thousandth of the spacing.
  const tolerance = Number.isFinite(step) ? step / 1000 : 0;
  let decimals = 0;
  while (decimals < 10 && values.some((v) => Math.abs(Number(v.toFixed(decimals)) - v) > tolerance)) decimals++;
  return values.map((v) => (Object.is(Number(v.toFixed(decimals)), -0) ? 0 : v).toFixed(decimals));
}

/**
 * Human words for an offline cause. No cause but a `lastSeen` is a device the gateway heard from
 * without a connection it holds (JSON over HTTP, or before a restart): not "never connected".
 */
export function offlineCauseText(cause: string | null | undefined, lastSeen?: number | null): string {
  switch (cause) {
    case 'closed':
      return 'closed by device';
    case 'timeout':
      return 'timed out';
    case 'connection_lost':
      return 'connection lost';
    case 'replaced':
      return 'replaced';
    case 'kicked':
      return 'kicked';
    case 'slow_consumer':
      return 'slow consumer';
    case 'shutdown':
      return 'gateway shutdown';
    case null:
    case undefined:
      return lastSeen == null ? 'never connected' : 'no connection';
    default:
      return cause.replace(/_/g, ' ');
  }
}
