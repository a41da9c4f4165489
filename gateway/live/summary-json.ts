/**
 * A device summary as JSON text: exactly what `JSON.stringify` gives, for less: the fleet stream
 * writes one summary per changed device per flush (and every device in a snapshot), and
 * JSON.stringify spends most of a summary on its `last` part (a small object per channel). Written
 * field by field in DeviceSummary's order; test/unit/fleet-changes.test.ts compares the two, so a
 * field added to the summary and not here fails there.
 */
import type { DeviceSummary, LastValue } from '../../devices/api/json.js';

/** A number as JSON (NaN and ±Infinity are null, as JSON.stringify has them). */
export function num(v: number | null): string {
  return v === null || !Number.isFinite(v) ? 'null' : `${v}`;
}

export function str(v: string | null): string {
  return v === null ? 'null' : JSON.stringify(v);
}

/** One channel of `last`, `"<channel>":{"value":…,"time":…}`. */
export function lastValueJson(channel: string, lv: LastValue): string {
  return `"${channel}":{"value":${typeof lv.value === 'boolean' ? lv.value : num(lv.value)},"time":${num(lv.time)}}`;
}

export function lastJson(last: Record<string, LastValue>): string {
  let out = '';
  // for…in gives integer-like keys in ascending order, as JSON.stringify does.
  for (const ch in last) out += (out === '' ? '' : ',') + lastValueJson(ch, last[ch]!);
  return `{${out}}`;
}

export function countersJson(c: DeviceSummary['counters']): string {
  return `{"connections":${num(c.connections)},"frames":${num(c.frames)},"readings":${num(c.readings)},"duplicates":${num(c.duplicates)},"gaps":${num(c.gaps)},"errors":${num(c.errors)}}`;
}

export function summaryJson(s: DeviceSummary): string {
  return (
    `{"id":${str(s.id)},"online":${s.online},"lastSeen":${num(s.lastSeen)},"type":${str(s.type)},"name":${str(s.name)},` +
    `"labels":${JSON.stringify(s.labels)},"disabled":${s.disabled},"transport":${str(s.transport)},"instance":${str(s.instance)},` +
    `"connectedAt":${num(s.connectedAt)},"disconnectedAt":${num(s.disconnectedAt)},"offlineCause":${str(s.offlineCause)},` +
    `"offlineDetail":${str(s.offlineDetail)},"epoch":${num(s.epoch)},"ackedSeq":${num(s.ackedSeq)},"counters":${countersJson(s.counters)},` +
    `"lastError":${str(s.lastError)},"last":${lastJson(s.last)}}`
  );
}
