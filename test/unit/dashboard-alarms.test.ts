/**
 * The dashboard's alarm logic (dashboard/src/alarms.ts, no DOM): badges, filters, newest-first order,
 * the filter in the address, chart marks, and the store merging the live `alarms` stream with lists
 * fetched from `GET /api/alarms` without letting a stale copy undo a newer one.
 */
import { describe, expect, it } from 'vitest';
import type { Alarm, AlarmSeverity, AlarmState, AlarmTransition } from '../../devices/api/json.js';
import { AlarmStore, badgeOf, badgeText, DEFAULT_FILTER, filterQuery, marksFor, matches, MAX_KEPT, newestFirst, parseFilter, severityRank, type AlarmChange } from '../../dashboard/src/alarms.js';

const T = Date.UTC(2026, 0, 1, 12, 0, 0);

function alarm(id: string, o: { device?: string; severity?: AlarmSeverity; state?: AlarmState; raisedAt?: number; channel?: number | null } = {}): Alarm {
  const state = o.state ?? 'active';
  const raisedAt = o.raisedAt ?? T;
  const transitions: AlarmTransition[] = [{ state: 'active', at: raisedAt, by: 'rule' }];
  if (state !== 'active') transitions.push({ state: 'acknowledged', at: raisedAt + 1000, by: 'operator', note: 'on it' });
  if (state === 'cleared') transitions.push({ state: 'cleared', at: raisedAt + 2000, by: 'rule' });
  const channel = o.channel === undefined ? 1 : o.channel;
  return {
    id,
    ruleId: 'type:climate:overheat',
    ruleName: 'overheat',
    deviceId: o.device ?? 'climate-0001',
    severity: o.severity ?? 'major',
    state,
    channel,
    value: channel === null ? null : 36.5,
    raisedAt,
    message: 'temperature 36.5 °C above 35 for 10 s',
    transitions,
  };
}

describe('badges', () => {
  it('count the open alarms, name the worst severity, and say when all are acknowledged', () => {
    expect(['critical', 'major', 'minor', 'warning'].map((s) => severityRank(s as AlarmSeverity))).toEqual([0, 1, 2, 3]);
    expect(badgeOf([])).toBeUndefined();
    expect(badgeOf([alarm('a', { state: 'cleared', severity: 'critical' })])).toBeUndefined();
    const b = badgeOf([alarm('a', { severity: 'minor' }), alarm('b', { severity: 'critical', state: 'acknowledged' }), alarm('c', { severity: 'warning' }), alarm('d', { severity: 'critical', state: 'cleared' })]);
    expect(b).toEqual({ open: 3, active: 2, severity: 'critical' });
    expect(badgeText(b!)).toBe('3 alarms · critical');
    expect(badgeText(badgeOf([alarm('a', { state: 'acknowledged', severity: 'minor' })])!)).toBe('1 alarm · minor (acknowledged)');
  });
});

describe('filters', () => {
  const list = [
    alarm('1', { device: 'climate-0001', severity: 'major', state: 'active', raisedAt: T }),
    alarm('2', { device: 'vibration-0001', severity: 'critical', state: 'acknowledged', raisedAt: T + 5000 }),
    alarm('3', { device: 'climate-0002', severity: 'warning', state: 'cleared', raisedAt: T + 9000 }),
  ];
  const ids = (f: Partial<typeof DEFAULT_FILTER>) => list.filter((a) => matches(a, { ...DEFAULT_FILTER, ...f })).sort(newestFirst).map((a) => a.id);

  it('by state (open = not cleared), severity and device, newest first', () => {
    expect(ids({})).toEqual(['2', '1']);
    expect(ids({ state: 'all' })).toEqual(['3', '2', '1']);
    expect(ids({ state: 'cleared' })).toEqual(['3']);
    expect(ids({ state: 'active' })).toEqual(['1']);
    expect(ids({ state: 'all', severity: 'critical' })).toEqual(['2']);
    expect(ids({ state: 'all', device: 'CLIMATE' })).toEqual(['3', '1']);
    expect(ids({ state: 'all', device: 'climate-0001' })).toEqual(['1']);
    // Equal times keep one order (by id), so rows do not swap on every redraw.
    const same = [alarm('a', { raisedAt: T }), alarm('b', { raisedAt: T })];
    expect(same.sort(newestFirst).map((a) => a.id)).toEqual(['b', 'a']);
    expect(same.reverse().sort(newestFirst).map((a) => a.id)).toEqual(['b', 'a']);
  });

  it('live in the address: defaults left out, junk read as the default', () => {
    expect(filterQuery(DEFAULT_FILTER)).toBe('');
    const f = { severity: 'critical' as const, state: 'cleared' as const, device: 'climate-0001' };
    expect(filterQuery(f)).toBe('state=cleared&severity=critical&device=climate-0001');
    expect(parseFilter(filterQuery(f))).toEqual(f);
    expect(parseFilter('state=bogus&severity=loud&device=%20x%20')).toEqual({ ...DEFAULT_FILTER, device: 'x' });
  });
});

describe('chart marks', () => {
  it('mark the channel the alarm watches, and device-wide (silent) alarms on every chart, in time order', () => {
    const list = [alarm('t', { channel: 1, raisedAt: T + 10 }), alarm('s', { channel: null, raisedAt: T, severity: 'critical', state: 'cleared' }), alarm('v', { channel: 3, raisedAt: T + 5 })];
    expect(marksFor(list, 1)).toEqual([
      { at: T, severity: 'critical', cleared: true, label: 'overheat' },
      { at: T + 10, severity: 'major', cleared: false, label: 'overheat' },
    ]);
    expect(marksFor(list, 3).map((m) => m.at)).toEqual([T, T + 5]);
    expect(marksFor(list, 2).map((m) => m.at)).toEqual([T]);
  });
});

describe('the alarm store', () => {
  function store(): { s: AlarmStore; changes: AlarmChange[] } {
    const s = new AlarmStore();
    const changes: AlarmChange[] = [];
    s.on('change', (c) => changes.push(c));
    return { s, changes };
  }

  it('takes the live snapshot, then deltas, and badges each device', () => {
    const { s, changes } = store();
    s.apply({ full: true, alarms: [alarm('a', { device: 'd1', severity: 'minor' }), alarm('b', { device: 'd2' })] });
    expect(s.badge('d1')).toEqual({ open: 1, active: 1, severity: 'minor' });
    s.apply({ full: false, alarms: [alarm('c', { device: 'd1', severity: 'critical' })] });
    expect(s.badge('d1')).toEqual({ open: 2, active: 2, severity: 'critical' });
    expect([...changes.at(-1)!.devices]).toEqual(['d1']);
    s.apply({ full: false, alarms: [alarm('c', { device: 'd1', severity: 'critical', state: 'cleared' })] });
    expect(s.badge('d1')).toEqual({ open: 1, active: 1, severity: 'minor' });
    expect(s.total()).toEqual({ open: 2, active: 2, severity: 'major' });
    // Cleared alarms stay listed (and marked on charts) but leave the badge.
    expect(s.list({ ...DEFAULT_FILTER, state: 'cleared' }).map((a) => a.id)).toEqual(['c']);
    expect(s.forDevice('d1').map((a) => a.id).sort()).toEqual(['a', 'c']);
  });

  it('drops an open alarm a new snapshot lacks (it was cleared while the page was not listening)', () => {
    const { s, changes } = store();
    s.apply({ full: true, alarms: [alarm('a', { device: 'd1' }), alarm('b', { device: 'd2' })] });
    s.upsert([alarm('old', { device: 'd1', state: 'cleared' })]);
    const before = changes.length;
    s.apply({ full: true, alarms: [alarm('b', { device: 'd2' })] });
    expect(s.get('a')).toBeUndefined();
    expect(s.badge('d1')).toBeUndefined();
    expect(s.get('old')?.state).toBe('cleared'); // cleared ones are not in snapshots: kept
    expect(changes.length).toBe(before + 1);
    expect(changes.at(-1)).toMatchObject({ stale: true });
    expect([...changes.at(-1)!.devices]).toEqual(['d1']);
    // A snapshot that lacks nothing is not stale.
    s.apply({ full: true, alarms: [alarm('b', { device: 'd2' }), alarm('n', { device: 'd3' })] });
    expect(changes.at(-1)).toMatchObject({ stale: false });
  });

  it('never lets a stale copy (fewer transitions) undo a newer one, in either order', () => {
    const { s, changes } = store();
    s.apply({ full: false, alarms: [alarm('a', { state: 'acknowledged' })] });
    const n = changes.length;
    s.upsert([alarm('a', { state: 'active' })]); // a list fetched before the acknowledgement
    expect(s.get('a')?.state).toBe('acknowledged');
    expect(changes.length).toBe(n); // nothing changed, nothing redrawn
    s.upsert([alarm('a', { state: 'cleared' })]);
    expect(s.get('a')?.state).toBe('cleared');
    // Junk in a message is skipped, the rest applied.
    s.apply({ full: false, alarms: [null as unknown as Alarm, { id: 5 } as unknown as Alarm, alarm('b')] });
    expect(s.get('b')).toBeDefined();
  });

  it('is bounded: beyond MAX_KEPT the oldest cleared alarms are forgotten, open ones never', () => {
    const { s } = store();
    const cleared = Array.from({ length: MAX_KEPT + 50 }, (_, i) => alarm(`c${i}`, { state: 'cleared', raisedAt: T + i, device: `d${i % 7}` }));
    s.upsert([alarm('open-old', { raisedAt: T - 1e6 })]);
    s.upsert(cleared);
    expect(s.alarms.size).toBe(MAX_KEPT);
    expect(s.get('open-old')).toBeDefined();
    expect(s.get('c0')).toBeUndefined();
    expect(s.get(`c${MAX_KEPT + 49}`)).toBeDefined();
    expect(s.forDevice('d0').every((a) => s.get(a.id) === a)).toBe(true);
  });
});
