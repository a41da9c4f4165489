/**
 * Alarm rules per kind, on the evaluator alone (no gateway): thresholds with hysteresis, durations
 * in device time, out-of-range, rate of change, bool, silent (the sweep), reordering, rule changes.
 */
import { describe, expect, it } from 'vitest';
import type { AlarmCondition, AlarmRule } from '../../devices/api/json.js';
import { TelemetryBatch } from '../../devices/codec/index.js';
import { Evaluator } from '../../gateway/alarms/evaluator.js';
import { NO_RULES, RuleSet } from '../../gateway/alarms/rule-set.js';
import { DeviceState } from '../../gateway/devices.js';

function rule(condition: AlarmCondition, id = 'r1'): AlarmRule {
  return { id, name: id, severity: 'major', deviceType: 'climate', condition, source: 'api' };
}

/** An evaluator over fixed rules, recording what it raises and clears as "+<rule>@<time>" / "-<rule>@<time>". */
function harness(rules: AlarmRule[], open: (ruleId: string, deviceId: string) => boolean = () => false, startedAt = 0) {
  const src = { version: 1, set: new RuleSet(rules), rulesFor: () => src.set };
  const ev = new Evaluator(src, open, startedAt);
  const events: string[] = [];
  const values: unknown[] = [];
  ev.onRaise((e) => {
    events.push(`+${e.rule.id}@${e.at}`);
    values.push(e.value);
  });
  ev.onClear((r, _d, at) => events.push(`-${r.id}@${at}`));
  const device = new DeviceState('climate-1', undefined);
  const batch = new TelemetryBatch(16);
  /** One frame at `t` with readings [channel, value, offset?]. */
  const send = (t: number, ...readings: [number, number, number?][]) => {
    batch.count = readings.length;
    readings.forEach(([ch, v, off], i) => {
      batch.channels[i] = ch;
      batch.values[i] = v;
      batch.offsets[i] = off ?? 0;
    });
    ev.frame(device, t, batch, t);
  };
  return { ev, events, values, send, device, src };
}

describe('above / below with hysteresis', () => {
  it('raises once when crossing, stays raised in the hysteresis band, clears past it', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 30, hysteresis: 2 })]);
    h.send(1, [1, 29]);
    h.send(2, [1, 31]);
    h.send(3, [1, 35]);
    h.send(4, [1, 29]); // in the band (28..30]: still raised
    h.send(5, [1, 31]); // no second alarm
    h.send(6, [1, 28]); // ≤ threshold - hysteresis: cleared
    h.send(7, [1, 30.5]);
    expect(h.events).toEqual(['+r1@2', '-r1@6', '+r1@7']);
    expect(h.values).toEqual([31, 30.5]);
  });

  it('a value flapping around the threshold without leaving the band raises one alarm', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 30, hysteresis: 1 })]);
    for (let i = 0; i < 100; i++) h.send(i, [1, i % 2 === 0 ? 30.2 : 29.8]);
    expect(h.events).toEqual(['+r1@0']);
  });

  it('below mirrors above', () => {
    const h = harness([rule({ kind: 'below', channel: 2, threshold: 10, hysteresis: 1 })]);
    h.send(1, [2, 9]);
    h.send(2, [2, 10.5]);
    h.send(3, [2, 11]);
    expect(h.events).toEqual(['+r1@1', '-r1@3']);
  });

  it('looks only at its own channel', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 30 })]);
    h.send(1, [2, 99], [3, 99]);
    expect(h.events).toEqual([]);
  });
});

describe('forMs: the condition must hold for the duration, in device time', () => {
  it('raises at the first reading at least forMs after the run began', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 8, forMs: 300_000 })]);
    h.send(0, [1, 9]);
    h.send(200_000, [1, 9.5]);
    expect(h.events).toEqual([]);
    h.send(300_000, [1, 9.2]);
    expect(h.events).toEqual(['+r1@300000']);
  });

  it('a reading back in range restarts the run', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 8, forMs: 1000 })]);
    h.send(0, [1, 9]);
    h.send(900, [1, 7]);
    h.send(1000, [1, 9]);
    h.send(1900, [1, 9]);
    expect(h.events).toEqual([]);
    h.send(2000, [1, 9]);
    expect(h.events).toEqual(['+r1@2000']);
  });

  it('uses each reading\'s own time within a frame (frame time + offset)', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 8, forMs: 1000 })]);
    h.send(10_000, [1, 9, 0], [1, 9, 500], [1, 9, 1000]);
    expect(h.events).toEqual(['+r1@11000']);
  });
});

describe('outside [min, max]', () => {
  it('raises below min or above max (after forMs), clears inside the band shrunk by hysteresis', () => {
    const h = harness([rule({ kind: 'outside', channel: 1, min: 0, max: 10, hysteresis: 1, forMs: 100 })]);
    h.send(0, [1, 11]);
    h.send(100, [1, 12]);
    h.send(200, [1, 9.5]); // inside, but not past the hysteresis
    h.send(300, [1, 9]);
    h.send(400, [1, -1]);
    h.send(500, [1, -2]);
    expect(h.events).toEqual(['+r1@100', '-r1@300', '+r1@500']);
  });
});

describe('rate of change', () => {
  it('compares each reading with the one before, per second of device time', () => {
    const h = harness([rule({ kind: 'rate', channel: 1, perSecond: 5 })]);
    h.send(0, [1, 20]);
    h.send(1000, [1, 24]); // 4/s
    h.send(2000, [1, 30]); // 6/s
    h.send(2500, [1, 33]); // 6/s: stays raised
    h.send(3500, [1, 34]); // 1/s: cleared
    h.send(3600, [1, 33]); // -10/s: the absolute change counts
    expect(h.events).toEqual(['+r1@2000', '-r1@3500', '+r1@3600']);
  });
});

describe('bool true', () => {
  it('raises when the channel becomes true and clears when it is false', () => {
    const h = harness([rule({ kind: 'true', channel: 3 })]);
    h.send(1, [3, 0]);
    h.send(2, [3, 1]);
    h.send(3, [3, 1]);
    h.send(4, [3, 0]);
    expect(h.events).toEqual(['+r1@2', '-r1@4']);
    expect(h.values).toEqual([true]);
  });
});

describe('silent', () => {
  it('the sweep raises after forMs without data (counted from start for a device never heard) and data clears it', () => {
    const h = harness([rule({ kind: 'silent', forMs: 60_000 }, 's')], undefined, 1000);
    const all = () => true;
    h.ev.sweep([h.device], 60_000, all);
    expect(h.events).toEqual([]);
    h.ev.sweep([h.device], 61_000, all);
    h.ev.sweep([h.device], 62_000, all);
    expect(h.events).toEqual(['+s@61000']);
    h.device.lastSeen = 70_000;
    h.send(70_000, [1, 20]);
    expect(h.events).toEqual(['+s@61000', '-s@70000']);
    h.ev.sweep([h.device], 100_000, all);
    expect(h.events.length).toBe(2);
    h.ev.sweep([h.device], 130_000, all);
    expect(h.events.at(-1)).toBe('+s@130000');
  });

  it('leaves a device whose rules run elsewhere to that instance', () => {
    const h = harness([rule({ kind: 'silent', forMs: 1000 }, 's')]);
    h.ev.sweep([h.device], 10_000, () => false);
    expect(h.events).toEqual([]);
  });
});

describe('device time order', () => {
  it('a reading older than the last evaluated one changes nothing (and is counted)', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 30 })]);
    h.send(1000, [1, 31]);
    h.send(500, [1, 10]); // late: would clear, but is older
    expect(h.events).toEqual(['+r1@1000']);
    expect(h.ev.reordered).toBe(1);
    h.send(1500, [1, 10]);
    expect(h.events).toEqual(['+r1@1000', '-r1@1500']);
  });

  it('a late frame cannot complete or break a duration either', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 8, forMs: 1000 })]);
    h.send(0, [1, 9]);
    h.send(800, [1, 9]);
    h.send(500, [1, 5]); // late reading below: ignored, the run goes on
    h.send(1000, [1, 9]);
    expect(h.events).toEqual(['+r1@1000']);
  });
});

describe('restart and rule changes', () => {
  it('an alarm open before a restart is cleared by the condition ending, without a second raise', () => {
    const h = harness([rule({ kind: 'above', channel: 1, threshold: 30 })], (r, d) => r === 'r1' && d === 'climate-1');
    h.send(1, [1, 35]);
    h.send(2, [1, 20]);
    expect(h.events).toEqual(['-r1@2']);
  });

  it('a rule added later takes effect; surviving rules keep their state', () => {
    const r1 = rule({ kind: 'above', channel: 1, threshold: 30 });
    const h = harness([r1]);
    h.send(1, [1, 35]);
    h.src.set = new RuleSet([r1, rule({ kind: 'true', channel: 3 }, 'r2')]);
    h.src.version++;
    h.send(2, [1, 36], [3, 1]);
    expect(h.events).toEqual(['+r1@1', '+r2@2']);
  });

  it('a device whose type changes (registry edit, types reload) runs its new type\'s rules', () => {
    const hot = rule({ kind: 'above', channel: 1, threshold: 30 }, 'hot');
    const src = { version: 1, rulesFor: (d: DeviceState) => (d.type === 'climate' ? new RuleSet([hot]) : NO_RULES) };
    const ev = new Evaluator(src, () => false);
    const raised: string[] = [];
    ev.onRaise((e) => raised.push(e.rule.id));
    const device = new DeviceState('d-1', undefined);
    const batch = new TelemetryBatch(1);
    batch.count = 1;
    batch.channels[0] = 1;
    batch.values[0] = 40;
    ev.frame(device, 1, batch, 1);
    expect(raised).toEqual([]);
    device.entry = { id: 'd-1', type: 'climate' };
    ev.frame(device, 2, batch, 2);
    expect(raised).toEqual(['hot']);
  });

  it('a device without rules costs nothing and raises nothing', () => {
    const h = harness([]);
    h.send(1, [1, 1e9]);
    expect(h.ev.evaluated).toBe(0);
  });
});
