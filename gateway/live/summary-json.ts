/**
 * A device summary as JSON text: exactly what `JSON.stringify` gives, in about a third of the time.
 * The fleet stream writes one summary per changed device per flush (and every device in a
 * snapshot), and JSON.stringify spends most of a summary on its `last` part: a small object per
 * channel, each with a 13-digit time. Written by hand, `last` costs a quarter of that; the other
 * fields go through JSON.stringify one by one, in the summary's own order, so a field added to
 * DeviceSummary comes out without a change here (test/unit/fleet-changes.test.ts compares the two).
 */
import type { DeviceSummary, LastValue } from '../../devices/api/json.js';

/** A JSON value that is a number, bool, string, null or a plain object of those. */
export function valueJson(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return 'null';
  return JSON.stringify(v);
}

/** One channel of `last`, `"<channel>":{"value":…,"time":…}`. */
export function lastValueJson(channel: string, lv: LastValue): string {
  return `"${channel}":{"value":${valueJson(lv.value)},"time":${valueJson(lv.time)}}`;
}

export function lastJson(last: Record<string, LastValue>): string {
  let out = '';
  // for…in gives integer-like keys in ascending order, as JSON.stringify does.
  for (const ch in last) out += (out === '' ? '' : ',') + lastValueJson(ch, last[ch]!);
  return `{${out}}`;
}

export function summaryJson(s: DeviceSummary): string {
  let out = '';
  const fields = s as unknown as Record<string, unknown>;
  for (const k in fields) {
    const v = fields[k];
    if (v === undefined) continue;
    out += `${out === '' ? '' : ','}"${k}":${k === 'last' ? lastJson(v as Record<string, LastValue>) : valueJson(v)}`;
  }
  return `{${out}}`;
}
