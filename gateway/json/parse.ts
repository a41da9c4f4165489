/**
 * JSON telemetry messages (README "JSON telemetry"), parsed and checked before anything is taken:
 * `{"temperature": 21.5}` (the short form: every key a channel name) or
 * `{"ts", "seq", "epoch", "values": {…}}` (the long form: an object with a `values` key), or an
 * array of either. Pure: no I/O, no device state; names become channels in channels.ts.
 */
import { MAX_TIMESTAMP, type ErrorCode } from '../../devices/codec/index.js';

export interface JsonMessage {
  /** ms since the Unix epoch; undefined: the gateway's receive time. */
  ts: number | undefined;
  /** u32; undefined: not deduped (at least once). */
  seq: number | undefined;
  /** u32, 0 when the message has a seq but no epoch. */
  epoch: number;
  names: string[];
  values: (number | boolean)[];
}

export interface JsonProblem {
  code: ErrorCode;
  message: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const LONG_FORM_KEYS = new Set(['ts', 'seq', 'epoch', 'values']);
const U32_MAX = 0xffffffff;
/**
 * A numeric `ts` below this (1973-03-03 in ms) is taken for seconds, the usual mistake (Unix time,
 * AWS IoT's timestamps): stored as ms it would land in January 1970, out of every chart and of
 * InfluxDB's retention, silently. Refused with the fix instead.
 */
const MIN_TS_MS = 100_000_000_000;

/** The messages in `bytes` (one object or an array of them), or why they cannot be taken. */
export function parseJsonTelemetry(bytes: Uint8Array): JsonMessage[] | JsonProblem {
  let doc: unknown;
  try {
    doc = JSON.parse(utf8.decode(bytes));
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : 'the bytes are not UTF-8';
    return { code: 'JSON_MALFORMED', message: `the message is not JSON: ${why}` };
  }
  // `[]` is a batch of no messages (answered `accepted: 0`, a promise of nothing): gateways that forward
  // their sensors' readings post one for each interval in which none came. A message must carry a reading.
  const list = Array.isArray(doc) ? doc : [doc];
  const out: JsonMessage[] = [];
  for (let i = 0; i < list.length; i++) {
    const m = message(list[i], Array.isArray(doc) ? `[${i}]` : 'the message');
    if ('code' in m) return m;
    out.push(m);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function message(m: unknown, where: string): JsonMessage | JsonProblem {
  if (!isObject(m)) return { code: 'JSON_MALFORMED', message: `${where} is not an object: send {"<channel>": value, …} or {"ts", "seq", "epoch", "values": {…}}` };
  if (!Object.hasOwn(m, 'values')) {
    // Only the long form's header keys: readings forgotten, not channels named "ts" or "seq".
    if (onlyHeaderKeys(m)) {
      return bad(isEmpty(m) ? `${where} has no readings: send {"<channel>": value, …} or {"ts", "seq", "epoch", "values": {"<channel>": value, …}}` : `${where} has no readings: ts, seq and epoch go with "values": {"<channel>": value, …}`);
    }
    return readings(m, { ts: undefined, seq: undefined, epoch: 0, names: [], values: [] }, where);
  }
  for (const k of Object.keys(m)) {
    if (!LONG_FORM_KEYS.has(k)) return bad(`${where} has "values", so it is the long form, which has only ts, seq, epoch and values: "${k.slice(0, 64)}" is none of them`);
  }
  if (!isObject(m.values)) return bad(`${where}: "values" must be an object of channel names and values`);
  const ts = time(m.ts);
  if (ts === null) return bad(`${where}: "ts" must be whole ms since 1970 (0 … ${MAX_TIMESTAMP}) or an ISO 8601 time`);
  if (typeof m.ts === 'number' && ts !== undefined && ts < MIN_TS_MS) {
    return bad(`${where}: "ts" ${ts} is in seconds, or before 1973: send ms since 1970 (${ts * 1000} if it is seconds) or an ISO 8601 time`);
  }
  const seq = u32(m.seq);
  if (seq === null) return bad(`${where}: "seq" must be a whole number from 0 to ${U32_MAX}`);
  const epoch = u32(m.epoch);
  if (epoch === null) return bad(`${where}: "epoch" must be a whole number from 0 to ${U32_MAX}`);
  if (epoch !== undefined && seq === undefined) return bad(`${where}: "epoch" without "seq" means nothing: add "seq" (or leave both out)`);
  if (isEmpty(m.values)) return bad(`${where} has no readings: "values" is empty; name at least one channel, {"<channel>": value, …}`);
  return readings(m.values, { ts, seq, epoch: epoch ?? 0, names: [], values: [] }, where);
}

function readings(values: Record<string, unknown>, into: JsonMessage, where: string): JsonMessage | JsonProblem {
  for (const name of Object.keys(values)) {
    const v = values[name];
    if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
      into.names.push(name);
      into.values.push(v);
      continue;
    }
    // JSON has no NaN or Infinity, but 1e999 parses to Infinity.
    const what = typeof v === 'number' ? `${v} (not finite)` : v === null ? 'null' : typeof v;
    return { code: 'JSON_BAD_VALUE', message: `${where}: "${name.slice(0, 64)}" is ${what}; a value is a finite number or true/false` };
  }
  return into;
}

/** True for {} and for objects of ts/seq/epoch alone (without allocating, as Object.keys would). */
function onlyHeaderKeys(m: Record<string, unknown>): boolean {
  for (const k in m) if (!LONG_FORM_KEYS.has(k)) return false;
  return true;
}

function isEmpty(m: Record<string, unknown>): boolean {
  for (const _ in m) return false;
  return true;
}

function bad(message: string): JsonProblem {
  return { code: 'JSON_BAD_FIELD', message };
}

/** undefined when absent, null when invalid. */
function u32(v: unknown): number | undefined | null {
  if (v === undefined) return undefined;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX ? v : null;
}

function time(v: unknown): number | undefined | null {
  if (v === undefined) return undefined;
  const t = typeof v === 'string' ? Date.parse(v) : v;
  return typeof t === 'number' && Number.isInteger(t) && t >= 0 && t <= MAX_TIMESTAMP ? t : null;
}
