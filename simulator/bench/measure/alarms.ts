/**
 * The cost of alarm rules on ingest: the gateway's full pipeline at 10,000 devices, with and
 * without one rule per channel per device (8 rules each, 80,000 in all, every kind but silent),
 * in interleaved rounds of the same run. The rules never fire: the figure is the steady state, the
 * evaluation a reading costs when nothing changes. They reach the gateway as its data folder's
 * alarm-rules.jsonl, the file POST /api/alarm-rules writes (record-log format: crc32, payload).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { deviceId } from '../load/devices.js';
import { tempDir } from '../../services/index.js';
import type { BenchKeys } from '../servers.js';
import type { WindowPlan } from './windows.js';
import { ingest, type IngestResult } from './ingest.js';

export const ALARM_DEVICES = 10_000;
export const RULES_PER_DEVICE = 8;

/** One rule per channel of the bench frame (frames.ts: six f32, two bools), none of which fires. */
function rulesFor(id: string): object[] {
  const c = (channel: number, condition: object) => ({ id: `${id}-c${channel}`, name: `ch${channel}`, severity: 'minor', deviceId: id, source: 'api', condition: { channel, ...condition } });
  return [
    c(1, { kind: 'outside', min: -1e12, max: 1e12, forMs: 60_000 }),
    c(2, { kind: 'above', threshold: 1e9, hysteresis: 1 }),
    c(3, { kind: 'below', threshold: -1e9 }),
    c(4, { kind: 'rate', perSecond: 1e15 }),
    c(5, { kind: 'above', threshold: 1e9, forMs: 10_000 }),
    c(6, { kind: 'outside', min: -1e9, max: 1e9, hysteresis: 1 }),
    c(7, { kind: 'below', threshold: -1 }),
    c(8, { kind: 'true' }),
  ];
}

export async function ingestAlarms(rules: boolean, keys: BenchKeys, plan: WindowPlan): Promise<IngestResult> {
  const dir = tempDir('bench-alarms-');
  try {
    mkdirSync(dir, { recursive: true });
    if (rules) {
      const lines: string[] = [];
      for (let i = 0; i < ALARM_DEVICES; i++) {
        for (const r of rulesFor(deviceId(i))) {
          const payload = JSON.stringify(r);
          lines.push(`=${crc32(payload).toString(16).padStart(8, '0')} ${payload}\n`);
        }
      }
      writeFileSync(join(dir, 'alarm-rules.jsonl'), lines.join(''));
    }
    // The later --data-dir wins over the bench's own.
    return await ingest({ kind: 'gateway', devices: ALARM_DEVICES, keys, plan, gatewayArgs: ['--data-dir', dir] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
