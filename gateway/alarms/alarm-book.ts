/**
 * The alarms and their lifecycle: active → acknowledged (an operator, with a note) → cleared (the
 * rule, when its condition ends, or an operator). At most one alarm per (rule, device) is not
 * cleared: while it is open, the rule raising again changes nothing, so a flapping reading cannot
 * make a storm. Every transition is time-stamped and written to <data-dir>/alarms.jsonl (the
 * record log the command journal uses: survives kill -9; the last line of an id wins) before it is
 * told (onChange). An operator's action the file cannot take is refused (FileWriteError); a rule's
 * transition is kept in memory, counted (`unpersisted`), and written with the file's rewrite.
 * Cleared alarms are kept up to `keepCleared` (oldest forgotten first).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Alarm, AlarmRule, AlarmSeverity, AlarmState } from '../../devices/api/json.js';
import { FileWriteError } from '../files/file-error.js';
import { encodeRecord, RecordLog, type RecordFs } from '../files/record-log.js';
import type { Logger } from '../log.js';
import { AlarmError } from './alarm-error.js';

export const DEFAULT_KEEP_CLEARED = 10_000;
const COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

export type AlarmListener = (alarm: Alarm) => void;

export interface AlarmQuery {
  states?: ReadonlySet<AlarmState>;
  severities?: ReadonlySet<AlarmSeverity>;
  device?: string;
  limit: number;
}

export interface NewAlarm {
  rule: AlarmRule;
  deviceId: string;
  channel: number | null;
  value: number | boolean | null;
  raisedAt: number;
  message: string;
}

const key = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;
const STATES = new Set(['active', 'acknowledged', 'cleared']);

/** An alarm record as read from the file or the backbone: the fields the book relies on. */
export function isAlarm(a: unknown): a is Alarm {
  const x = a as Partial<Alarm> | null;
  return (
    typeof x === 'object' && x !== null &&
    typeof x.id === 'string' && typeof x.ruleId === 'string' && typeof x.deviceId === 'string' &&
    STATES.has(x.state as string) && Array.isArray(x.transitions) && x.transitions.length > 0 &&
    x.transitions.every((t) => typeof t?.at === 'number' && STATES.has(t.state))
  );
}

export class AlarmBook {
  private readonly byId = new Map<string, Alarm>();
  /** Open (not cleared) alarms by rule and device. */
  private readonly open = new Map<string, Alarm>();
  /** Cleared alarms, oldest first. */
  private readonly cleared = new Set<Alarm>();
  private readonly file: RecordLog;
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly changeListeners: AlarmListener[] = [];
  private readonly forgetListeners: AlarmListener[] = [];
  /** Transitions by new state and by whom, since start (metrics). */
  readonly transitions = { active: 0, acknowledged: 0, cleared: 0 };
  /** Rule transitions that did not reach the file when they happened (written with its rewrite). */
  unpersisted = 0;

  constructor(
    dir: string,
    private readonly opts: { log?: Logger | undefined; keepCleared?: number; fs?: RecordFs; retryMs?: number } = {},
  ) {
    this.file = new RecordLog(join(dir, 'alarms.jsonl'), {
      log: opts.log,
      ...(opts.fs ? { fs: opts.fs } : {}),
      ...(opts.retryMs ? { retryMs: opts.retryMs } : {}),
      consequence: 'operators cannot acknowledge or clear alarms (ALARM_NOT_PERSISTED) and new transitions wait in memory until it can be rewritten',
    });
  }

  get failure(): FileWriteError | undefined {
    return this.file.failure;
  }

  get refused(): number {
    return this.file.refused;
  }

  /** Every change of an alarm (raised, acknowledged, cleared), after it was written. */
  onChange(l: AlarmListener): void {
    this.changeListeners.push(l);
  }

  /** A cleared alarm forgotten (over keepCleared). */
  onForget(l: AlarmListener): void {
    this.forgetListeners.push(l);
  }

  /** Loads what the last run left (an active alarm stays active) and opens the file. */
  start(): void {
    const loaded = new Map<string, Alarm>();
    this.file.load((text) => {
      try {
        const a: unknown = JSON.parse(text);
        if (!isAlarm(a)) return false;
        loaded.set(a.id, a);
        return true;
      } catch {
        return false;
      }
    });
    const sorted = [...loaded.values()].sort((a, b) => a.transitions.at(-1)!.at - b.transitions.at(-1)!.at);
    for (const a of sorted) this.index(a);
    this.trim();
    this.file.open(() => this.snapshot());
    // fsync in batches, as the command journal: a kill loses nothing, a power cut at most 100 ms.
    this.syncTimer ??= setInterval(() => this.file.sync(), 100);
    this.syncTimer.unref();
  }

  close(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = undefined;
    this.file.close(true);
  }

  get(id: string): Alarm | undefined {
    return this.byId.get(id);
  }

  /** The open alarm of a rule and device, if any. */
  openFor(ruleId: string, deviceId: string): Alarm | undefined {
    return this.open.get(key(ruleId, deviceId));
  }

  /** Alarms not cleared. */
  openAlarms(): IterableIterator<Alarm> {
    return this.open.values();
  }

  /** Newest first (by the last transition), filtered. */
  list(q: AlarmQuery): Alarm[] {
    const out: Alarm[] = [];
    for (const a of this.byId.values()) {
      if (q.states && !q.states.has(a.state)) continue;
      if (q.severities && !q.severities.has(a.severity)) continue;
      if (q.device !== undefined && a.deviceId !== q.device) continue;
      out.push(a);
    }
    out.sort((a, b) => b.transitions.at(-1)!.at - a.transitions.at(-1)!.at || (a.id < b.id ? 1 : -1));
    return out.slice(0, q.limit);
  }

  /** Open alarms by severity and state (metrics). */
  counts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const a of this.open.values()) m.set(`${a.severity}\u0000${a.state}`, (m.get(`${a.severity}\u0000${a.state}`) ?? 0) + 1);
    return m;
  }

  /** The rule's condition came true: a new alarm, unless one is open already (then undefined). */
  raise(n: NewAlarm, now = Date.now()): Alarm | undefined {
    if (this.open.has(key(n.rule.id, n.deviceId))) return undefined;
    const alarm: Alarm = {
      id: randomUUID(),
      ruleId: n.rule.id,
      ruleName: n.rule.name,
      deviceId: n.deviceId,
      severity: n.rule.severity,
      state: 'active',
      channel: n.channel,
      value: n.value,
      raisedAt: n.raisedAt,
      message: n.message,
      transitions: [{ state: 'active', at: now, by: 'rule' }],
    };
    this.index(alarm);
    this.persistRule(alarm);
    this.transitions.active++;
    this.changed(alarm);
    return alarm;
  }

  /** The rule's condition ended (or the rule is gone): its open alarm for the device clears. */
  ruleClear(ruleId: string, deviceId: string, now = Date.now(), note?: string): Alarm | undefined {
    const a = this.open.get(key(ruleId, deviceId));
    if (!a) return undefined;
    this.move(a, 'cleared', 'rule', now, note);
    this.persistRule(a);
    this.changed(a);
    return a;
  }

  /** An operator acknowledges: active → acknowledged. Written before it is answered. */
  acknowledge(id: string, note: string | undefined, now = Date.now()): Alarm {
    const a = this.find(id);
    if (a.state === 'acknowledged') throw new AlarmError('ALARM_ALREADY_ACKNOWLEDGED', `alarm ${id} is acknowledged already`);
    if (a.state === 'cleared') throw new AlarmError('ALARM_ALREADY_CLEARED', `alarm ${id} is cleared already`);
    return this.operator(a, 'acknowledged', note, now);
  }

  /** An operator clears by hand (from active or acknowledged). Written before it is answered. */
  clear(id: string, note: string | undefined, now = Date.now()): Alarm {
    const a = this.find(id);
    if (a.state === 'cleared') throw new AlarmError('ALARM_ALREADY_CLEARED', `alarm ${id} is cleared already`);
    return this.operator(a, 'cleared', note, now);
  }

  private find(id: string): Alarm {
    const a = this.byId.get(id);
    if (!a) throw new AlarmError('ALARM_NOT_FOUND', `no alarm "${id}" (cleared alarms are kept only for the newest ${this.keepCleared})`);
    return a;
  }

  private operator(a: Alarm, state: AlarmState, note: string | undefined, now: number): Alarm {
    // Written first: an acknowledgement the file did not take is not answered 200.
    const next: Alarm = { ...a, state, transitions: [...a.transitions, { state, at: now, by: 'operator', ...(note !== undefined ? { note } : {}) }] };
    if (!this.file.append(encodeRecord(JSON.stringify(next)))) {
      throw this.file.failure ?? new FileWriteError(this.file.path, 'write', Object.assign(new Error('the alarm file is closed'), { code: 'EBADF' }));
    }
    this.move(a, state, 'operator', now, note);
    this.changed(a);
    return a;
  }

  private move(a: Alarm, state: AlarmState, by: 'rule' | 'operator', now: number, note?: string): void {
    a.transitions.push({ state, at: now, by, ...(note !== undefined ? { note } : {}) });
    a.state = state;
    this.transitions[state]++;
    if (state === 'cleared') {
      this.open.delete(key(a.ruleId, a.deviceId));
      this.cleared.add(a);
      this.trim();
    }
  }

  private persistRule(a: Alarm): void {
    if (!this.file.append(encodeRecord(JSON.stringify(a)))) this.unpersisted++;
    if (this.file.bytes > COMPACT_AFTER_BYTES) this.file.compact();
  }

  private index(a: Alarm): void {
    this.byId.set(a.id, a);
    if (a.state === 'cleared') this.cleared.add(a);
    else {
      // Two open alarms of one rule and device (a file edited by hand): the older one stays listed.
      this.open.set(key(a.ruleId, a.deviceId), a);
    }
  }

  private get keepCleared(): number {
    return this.opts.keepCleared ?? DEFAULT_KEEP_CLEARED;
  }

  private trim(): void {
    for (const a of this.cleared) {
      if (this.cleared.size <= this.keepCleared) break;
      this.cleared.delete(a);
      this.byId.delete(a.id);
      for (const l of this.forgetListeners) l(a);
    }
  }

  private *snapshot(): Iterable<string> {
    for (const a of this.cleared) yield JSON.stringify(a);
    for (const a of this.open.values()) yield JSON.stringify(a);
  }

  private changed(a: Alarm): void {
    for (const l of this.changeListeners) l(a);
  }
}
