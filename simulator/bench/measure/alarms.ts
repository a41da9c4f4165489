/**
 * The cost of alarm rules on ingest: the gateway's full pipeline at 10,000 devices of one type,
 * with and without one rule per channel on that type (8 rules, every kind but silent), in
 * interleaved rounds of the same run. The rules never fire: the figure is the steady state, the
 * evaluation a reading costs when nothing changes. Both runs get a registry naming the devices'
 * type (`bench`, no tokens: the fleet key admits them); the rules reach the gateway as its data
 * folder's alarm-rules.jsonl, the file POST /api/alarm-rules writes (record-log format).
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

const TYPE = 'bench';

/** One rule per channel of the bench frame (frames.ts: six f32, two bools), none of which fires. */
function rules(): object[] {
  const c = (channel: number, condition: object) => ({ id: `bench-c${channel}`, name: `ch${channel}`, severity: 'minor', deviceType: TYPE, source: 'api', condition: { channel, ...condition } });
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

export async function ingestAlarms(withRules: boolean, keys: BenchKeys, plan: WindowPlan): Promise<IngestResult> {
  const dir = tempDir('bench-alarms-');
  try {
    mkdirSync(dir, { recursive: true });
    const registry = join(dir, 'registry.json');
    writeFileSync(registry, JSON.stringify({ devices: Array.from({ length: ALARM_DEVICES }, (_, i) => ({ id: deviceId(i), type: TYPE })) }));
    if (withRules) {
      const lines = rules().map((r) => {
        const payload = JSON.stringify(r);
        return `=${crc32(payload).toString(16).padStart(8, '0')} ${payload}\n`;
      });
      writeFileSync(join(dir, 'alarm-rules.jsonl'), lines.join(''));
    }
    // The later --data-dir wins over the bench's own.
    return await ingest({ kind: 'gateway', devices: ALARM_DEVICES, keys, plan, gatewayArgs: ['--data-dir', dir, '--registry', registry] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
