/**
 * The alarm lifecycle and its file: one open alarm per rule and device, operator transitions,
 * restore after a restart (kill -9 leaves only what was appended), a full disk refusing operator
 * actions while rule transitions are kept and counted, cleared alarms bounded; the rule book's
 * persistence and read-only types rules; the rule validator.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlarmRule } from '../../devices/api/json.js';
import { AlarmBook } from '../../gateway/alarms/alarm-book.js';
import { AlarmError } from '../../gateway/alarms/alarm-error.js';
import { AlarmRuleError, parseAlarmRule } from '../../gateway/alarms/rule.js';
import { builtInTypeRules, RuleBook, typeRulesOf } from '../../gateway/alarms/rules.js';
import { FileWriteError } from '../../gateway/files/file-error.js';
import type { RecordFs } from '../../gateway/files/record-log.js';
import { DeviceState } from '../../gateway/devices.js';
import { tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
const closers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('alarms-');
  dirs.push(d);
  return d;
}

function book(d: string, opts: ConstructorParameters<typeof AlarmBook>[1] = {}): AlarmBook {
  const b = new AlarmBook(d, opts);
  b.start();
  closers.push(b);
  return b;
}

/** node:fs whose appends fail with ENOSPC while `full` (rewrites too). */
function fullDisk(): RecordFs & { full: boolean } {
  const d: RecordFs & { full: boolean } = {
    ...fs,
    full: false,
    writeSync: ((fd: number, buf: Buffer, off: number, len: number) => {
      if (d.full) throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
      return fs.writeSync(fd, buf, off, len);
    }) as RecordFs['writeSync'],
  };
  return d;
}

const RULE: AlarmRule = { id: 'hot', name: 'hot', severity: 'critical', deviceType: 'climate', condition: { kind: 'above', channel: 1, threshold: 30 }, source: 'api' };
const raise = (b: AlarmBook, deviceId = 'climate-1', value = 31) => b.raise({ rule: RULE, deviceId, channel: 1, value, raisedAt: 1000, message: 'hot' });

describe('alarm lifecycle', () => {
  it('one open alarm per rule and device; active → acknowledged → cleared, each transition stamped', () => {
    const b = book(dir());
    const changes: string[] = [];
    b.onChange((a) => changes.push(`${a.deviceId}:${a.state}`));
    const a = raise(b)!;
    expect(raise(b, 'climate-1', 40)).toBeUndefined();
    expect(raise(b, 'climate-2')).toBeDefined();
    expect(b.acknowledge(a.id, 'on my way', 2000)).toMatchObject({ state: 'acknowledged' });
    expect(() => b.acknowledge(a.id, undefined)).toThrow(expect.objectContaining({ code: 'ALARM_ALREADY_ACKNOWLEDGED' }));
    b.ruleClear('hot', 'climate-1', 3000);
    expect(() => b.clear(a.id, undefined)).toThrow(expect.objectContaining({ code: 'ALARM_ALREADY_CLEARED' }));
    expect(() => b.acknowledge(a.id, undefined)).toThrow(AlarmError);
    expect(b.get(a.id)!.transitions).toEqual([
      { state: 'active', at: expect.any(Number), by: 'rule' },
      { state: 'acknowledged', at: 2000, by: 'operator', note: 'on my way' },
      { state: 'cleared', at: 3000, by: 'rule' },
    ]);
    expect(changes).toEqual(['climate-1:active', 'climate-2:active', 'climate-1:acknowledged', 'climate-1:cleared']);
    // Cleared: the rule may raise a new one.
    expect(raise(b)!.id).not.toBe(a.id);
  });

  it('filters and orders the list newest first', () => {
    const b = book(dir());
    const a = raise(b, 'd1')!;
    raise(b, 'd2');
    b.clear(a.id, 'by hand', Date.now() + 10);
    expect(b.list({ limit: 10 }).map((x) => x.deviceId)).toEqual(['d1', 'd2']);
    expect(b.list({ limit: 10, states: new Set(['active']) }).map((x) => x.deviceId)).toEqual(['d2']);
    expect(b.list({ limit: 10, device: 'd1' })).toHaveLength(1);
    expect(b.list({ limit: 10, severities: new Set(['minor']) })).toHaveLength(0);
    expect(b.list({ limit: 1 })).toHaveLength(1);
  });
});

describe('alarm file', () => {
  it('restores every alarm after a restart without close (kill -9): an active alarm stays active', () => {
    const d = dir();
    const b1 = new AlarmBook(d);
    b1.start();
    const a = raise(b1)!;
    const c = raise(b1, 'climate-2')!;
    b1.acknowledge(c.id, 'seen');
    // No close(): what a kill leaves.
    const b2 = book(d);
    expect(b2.get(a.id)).toMatchObject({ state: 'active', deviceId: 'climate-1' });
    expect(b2.get(c.id)!.transitions.map((t) => t.state)).toEqual(['active', 'acknowledged']);
    expect(b2.openFor('hot', 'climate-1')?.id).toBe(a.id);
    expect(raise(b2)).toBeUndefined();
  });

  it('a full disk refuses an operator action (nothing changes) and counts rule transitions it could not write; recovery writes them', async () => {
    const d = dir();
    const disk = fullDisk();
    const b = book(d, { fs: disk, retryMs: 20 });
    const a = raise(b)!;
    disk.full = true;
    expect(() => b.acknowledge(a.id, 'x')).toThrow(FileWriteError);
    expect(b.get(a.id)!.state).toBe('active');
    raise(b, 'climate-2');
    expect(b.unpersisted).toBe(1);
    expect(b.failure?.noSpace).toBe(true);
    disk.full = false;
    await waitFor(() => b.failure === undefined, 'the alarm file to recover');
    const again = new AlarmBook(d);
    again.start();
    closers.push(again);
    expect(again.openFor('hot', 'climate-2')).toBeDefined();
  });

  it('keeps at most keepCleared cleared alarms, oldest forgotten first; open ones always', () => {
    const b = book(dir(), { keepCleared: 10 });
    const forgotten: string[] = [];
    b.onForget((a) => forgotten.push(a.deviceId));
    for (let i = 0; i < 15; i++) {
      raise(b, `d${i}`);
      b.ruleClear('hot', `d${i}`);
    }
    raise(b, 'open-one');
    expect(b.list({ limit: 100, states: new Set(['cleared']) })).toHaveLength(10);
    expect(forgotten).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
    expect(b.openFor('hot', 'open-one')).toBeDefined();
  });
});

describe('rules', () => {
  it('validates with a searchable code and says where the rule came from', () => {
    const bad = parseAlarmRule({ name: 'x', severity: 'bad', deviceType: 'climate', condition: { kind: 'true', channel: 1 } }, 'types file, type climate');
    expect(bad).toBeInstanceOf(AlarmRuleError);
    expect((bad as AlarmRuleError).code).toBe('BAD_ALARM_RULE');
    expect((bad as Error).message).toMatch(/^types file, type climate: severity/);
    for (const condition of [{ kind: 'above', channel: 1 }, { kind: 'outside', channel: 1, min: 5, max: 1 }, { kind: 'silent', forMs: 10 }, { kind: 'rate', channel: 300, perSecond: 1 }, { kind: 'nope' }]) {
      expect(parseAlarmRule({ name: 'x', severity: 'minor', deviceId: 'd1', condition }, 'api')).toBeInstanceOf(AlarmRuleError);
    }
    expect(parseAlarmRule({ name: 'x', severity: 'minor', deviceId: 'd1', deviceType: 'climate', condition: { kind: 'true', channel: 1 } }, 'api')).toBeInstanceOf(AlarmRuleError);
    expect(parseAlarmRule({ name: 'Too hot', severity: 'minor', deviceType: 'climate', condition: { kind: 'true', channel: 1 } }, 'x', 'types')).toMatchObject({ id: 'type:climate:Too-hot', source: 'types' });
  });

  it('checks a types table\'s rules with the place of the bad one', () => {
    const ok = typeRulesOf([{ type: 'fridge', alarms: [{ name: 'warm', severity: 'major', condition: { kind: 'above', channel: 1, threshold: 8, forMs: 300_000 } }] }], 'types.json');
    expect(ok).toEqual([expect.objectContaining({ id: 'type:fridge:warm', deviceType: 'fridge', source: 'types' })]);
    const bad = typeRulesOf([{ type: 'fridge', alarms: [{ name: 'warm', severity: 'hot', condition: { kind: 'true', channel: 1 } }] }], 'types.json');
    expect(bad).toBeInstanceOf(AlarmRuleError);
    expect((bad as Error).message).toMatch(/^types\.json: types\[0\]\.alarms\[0\]: severity/);
    const twice = typeRulesOf([{ type: 'f', alarms: [{ name: 'a', severity: 'minor', condition: { kind: 'true', channel: 1 } }, { name: 'a', severity: 'major', condition: { kind: 'true', channel: 2 } }] }], 'x');
    expect((twice as Error).message).toMatch(/second rule with id "type:f:a"/);
  });

  it('refuses a types rule on a channel its type lacks, or of the wrong value type, naming the place', () => {
    const channels = [
      { id: 1, name: 'level', unit: '%', type: 'f32' as const },
      { id: 2, name: 'overflow', unit: '', type: 'bool' as const },
    ];
    const tank = (condition: object) => typeRulesOf([{ type: 'tank', channels, alarms: [{ name: 'r', severity: 'major', condition }] }], 'types.json');
    expect(tank({ kind: 'above', channel: 1, threshold: 90 })).toEqual([expect.objectContaining({ id: 'type:tank:r' })]);
    expect(tank({ kind: 'true', channel: 2 })).toEqual([expect.objectContaining({ id: 'type:tank:r' })]);
    expect(tank({ kind: 'silent', forMs: 5000 })).toEqual([expect.objectContaining({ id: 'type:tank:r' })]);
    const typo = tank({ kind: 'above', channel: 9, threshold: 1 });
    expect(typo).toBeInstanceOf(AlarmRuleError);
    expect((typo as Error).message).toBe('types.json: types[0].alarms[0]: condition.channel 9 is not a channel of type tank (its channels: 1 level, 2 overflow)');
    expect((tank({ kind: 'true', channel: 1 }) as Error).message).toMatch(/alarms\[0\]: a true condition needs a bool channel; channel 1 \(level\) of type tank is f32/);
    expect((tank({ kind: 'rate', channel: 2, perSecond: 1 }) as Error).message).toMatch(/a rate condition needs a number channel; channel 2 \(overflow\)/);
  });

  it('refuses an API rule for a type that does not exist, or on a channel of its type that does not fit', () => {
    const r = new RuleBook(dir());
    r.start();
    closers.push(r);
    const refused = (rule: object) => {
      try {
        r.add({ name: 'x', severity: 'minor', ...rule });
      } catch (err) {
        return err as AlarmRuleError;
      }
      throw new Error('the rule was taken');
    };
    expect(refused({ deviceType: 'climat', condition: { kind: 'above', channel: 1, threshold: 1 } })).toMatchObject({ code: 'BAD_ALARM_RULE', message: 'the rule: deviceType "climat" is not a device type (GET /api/device-types lists them)' });
    expect(refused({ deviceType: 'climate', condition: { kind: 'above', channel: 9, threshold: 1 } })).toMatchObject({ code: 'BAD_ALARM_RULE', message: expect.stringMatching(/channel 9 is not a channel of type climate \(its channels: 1 temperature/) });
    expect(refused({ deviceType: 'climate', condition: { kind: 'true', channel: 1 } })).toMatchObject({ code: 'BAD_ALARM_RULE', message: expect.stringMatching(/needs a bool channel/) });
    expect(refused({ deviceType: 'climate', condition: { kind: 'above', channel: 'temperature', threshold: 1 } }).message).toBe(
      'the rule: condition.channel must be a channel id from 0 to 255 (the channel\'s id, not its name "temperature": GET /api/device-types lists both)',
    );
    expect(r.all().filter((x) => x.source === 'api')).toEqual([]);
    // A device's own rule is not checked against a type: its type may change with its registry entry.
    expect(r.add({ name: 'own', severity: 'minor', deviceId: 'thing-1', condition: { kind: 'above', channel: 9, threshold: 1 } }).id).toMatch(/^rule-/);
  });

  it('the built-in demo types carry valid rules', () => {
    const ids = builtInTypeRules().map((r) => r.id);
    expect(ids).toContain('type:climate:overheating');
    expect(ids).toContain('type:vibration:vibration');
  });

  it('API rules survive a restart; deleted ones stay deleted; types rules are read-only', () => {
    const d = dir();
    const r1 = new RuleBook(d);
    r1.start();
    const a = r1.add({ name: 'cold', severity: 'minor', deviceId: 'climate-7', condition: { kind: 'below', channel: 1, threshold: 2 } });
    const b = r1.add({ id: 'mine', name: 'wet', severity: 'warning', deviceType: 'climate', condition: { kind: 'above', channel: 2, threshold: 90 } });
    expect(() => r1.add({ id: 'mine', name: 'again', severity: 'warning', deviceType: 'climate', condition: { kind: 'true', channel: 2 } })).toThrow(expect.objectContaining({ code: 'ALARM_RULE_EXISTS' }));
    r1.remove(a.id);
    expect(() => r1.remove('type:climate:overheating')).toThrow(expect.objectContaining({ code: 'ALARM_RULE_READ_ONLY' }));
    expect(() => r1.remove('nothing')).toThrow(expect.objectContaining({ code: 'ALARM_RULE_NOT_FOUND' }));
    const r2 = new RuleBook(d);
    r2.start();
    closers.push(r1, r2);
    expect(r2.get(b.id)).toEqual(b);
    expect(r2.get(a.id)).toBeUndefined();
    // A climate device runs the type's rules and the API's rule for its type.
    const set = r2.rulesFor(new DeviceState('climate-3', undefined));
    expect(set.rules.map((r) => r.rule.id)).toEqual(['type:climate:overheating', 'type:climate:silent', 'mine']);
  });
});
