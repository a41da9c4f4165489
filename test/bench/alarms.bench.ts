/**
 * Evaluating alarm rules on one frame of 8 readings (the bench frame's channels), for a device with
 * one rule per channel (none firing: the steady state) against a device with no rules, and the
 * decode the same frame costs, for scale. Each op evaluates FRAMES_PER_OP frames.
 * Run: `npx vitest bench --run --project unit test/bench/alarms.bench.ts`. Read the ratios: the
 * module runner slows every path (see decode.bench.ts).
 */
import { bench, describe } from 'vitest';
import type { AlarmRule } from '../../devices/api/json.js';
import { TelemetryBatch } from '../../devices/codec/index.js';
import { Evaluator } from '../../gateway/alarms/evaluator.js';
import { NO_RULES, RuleSet } from '../../gateway/alarms/rule-set.js';
import { DeviceState } from '../../gateway/devices.js';

const FRAMES_PER_OP = 1000;
const rule = (channel: number, condition: object): AlarmRule => ({ id: `c${channel}`, name: `c${channel}`, severity: 'minor', deviceId: 'd', source: 'api', condition: { channel, ...condition } as AlarmRule['condition'] });
const RULES = new RuleSet([
  rule(1, { kind: 'outside', min: -1e12, max: 1e12, forMs: 60_000 }),
  rule(2, { kind: 'above', threshold: 1e9, hysteresis: 1 }),
  rule(3, { kind: 'below', threshold: -1e9 }),
  rule(4, { kind: 'rate', perSecond: 1e15 }),
  rule(5, { kind: 'above', threshold: 1e9, forMs: 10_000 }),
  rule(6, { kind: 'outside', min: -1e9, max: 1e9, hysteresis: 1 }),
  rule(7, { kind: 'below', threshold: -1 }),
  rule(8, { kind: 'true' }),
]);

function setup(set: RuleSet) {
  const ev = new Evaluator({ version: 1, rulesFor: () => set }, () => false);
  const device = new DeviceState('d', undefined);
  const batch = new TelemetryBatch(8);
  batch.count = 8;
  for (let i = 0; i < 8; i++) {
    batch.channels[i] = i + 1;
    batch.values[i] = i < 6 ? 20 + i : i === 6 ? 1 : 0;
  }
  let t = 1_700_000_000_000;
  return () => {
    for (let i = 0; i < FRAMES_PER_OP; i++) ev.frame(device, (t += 1000), batch, t);
  };
}

describe(`alarm rules per frame of 8 readings (× ${FRAMES_PER_OP} frames per op)`, () => {
  bench('no rules', setup(NO_RULES));
  bench('8 rules, one per channel, none firing', setup(RULES));
});
