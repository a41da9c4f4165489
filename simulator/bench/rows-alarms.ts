/** The alarm rules row: ingest at 10,000 devices of a type with one rule per channel against none, same run. */
import type { IngestResult } from './measure/ingest.js';
import { ALARM_DEVICES, RULES_PER_DEVICE } from './measure/alarms.js';
import type { Row } from './report.js';
import { limit, relText } from './rows.js';

const cpuPerFrame = (r: IngestResult) => (r.serverCpu / r.rate) * 1e6;

export function buildAlarmRows(results: ReadonlyMap<string, unknown>, missing: ReadonlyMap<string, string>): Row[] {
  const on = results.get('alarms-on') as IngestResult | undefined;
  const off = results.get('alarms-off') as IngestResult | undefined;
  const n = ALARM_DEVICES.toLocaleString('en-US');
  const setup = `${n} devices of one type (registry), 64-byte frames (8 readings), one dashboard following every device`;
  const rows: Row[] = [];
  for (const [id, r, measurement] of [
    ['alarms-off', off, 'Gateway, no alarm rules'],
    ['alarms-on', on, `Gateway, ${RULES_PER_DEVICE} alarm rules on the devices' type (one per channel, none firing)`],
  ] as const) {
    if (!r) {
      rows.push({ measurement, setup, missing: missing.get(id) ?? 'not measured (not in --only)' });
      continue;
    }
    // CPU per frame moves less than the rate with other load on the machine: shown beside it.
    const row: Row = { measurement, setup, rate: r.rate, readings: r.readingsRate, result: `${limit(r)}; ${cpuPerFrame(r).toFixed(2)} µs of gateway CPU per frame` };
    if (id === 'alarms-on' && off) {
      row.ratio = `${relText(r, off, 'no rules')}; CPU per frame ${(cpuPerFrame(r) / cpuPerFrame(off)).toFixed(2)}× no rules`;
      row.target = 'within noise of no rules (≥ 0.95×)';
    }
    rows.push(row);
  }
  return rows;
}
