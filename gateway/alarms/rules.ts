/**
 * Every alarm rule the gateway runs: the device types' (read-only: the built-in demo types, and the
 * types file through setTypeRules) and the API's, which survive restarts in
 * <data-dir>/alarm-rules.jsonl (a record log: one line per rule added, one per rule deleted; see
 * files/record-log.ts for what a crash or a full disk does). Hands each device its compiled rule
 * set (rule-set.ts), cached per type, and a version that changes with every change.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AlarmRule } from '../../devices/api/json.js';
import { DEMO_DEVICE_TYPES, deviceType } from '../../devices/device-types.js';
import type { ChannelSpec } from '../../devices/types/spec.js';
import type { DeviceState } from '../devices.js';
import { FileWriteError } from '../files/file-error.js';
import { encodeRecord, RecordLog, type RecordFs } from '../files/record-log.js';
import type { Logger } from '../log.js';
import { AlarmError } from './alarm-error.js';
import { AlarmRuleError, channelProblem, parseAlarmRule, unknownRuleField } from './rule.js';
import { RuleSet } from './rule-set.js';

/** Most rules the API takes (each device runs its type's and its own on every reading). */
export const MAX_API_RULES = 10_000;

/**
 * The rules a table of types declares (each type's `alarms`), checked; the first bad one is the
 * error, with its place (`<where>: types[1].alarms[0]: …`). The types file loader calls this on
 * each (re)load and hands the result to RuleBook.setTypeRules.
 */
export function typeRulesOf(
  types: readonly { type: string; channels?: readonly ChannelSpec[]; alarms?: readonly unknown[] | undefined }[],
  where: string,
): AlarmRule[] | AlarmRuleError {
  const out: AlarmRule[] = [];
  for (const [i, t] of types.entries()) {
    for (const [j, spec] of (t.alarms ?? []).entries()) {
      const r = parseAlarmRule(typeof spec === 'object' && spec !== null ? { ...spec, deviceType: t.type } : spec, `${where}: types[${i}].alarms[${j}]`, 'types');
      if (r instanceof Error) return r;
      const problem = t.channels && channelProblem(r.condition, t.type, t.channels);
      if (problem) return new AlarmRuleError(`${where}: types[${i}].alarms[${j}]`, problem);
      if (out.some((x) => x.id === r.id)) return new AlarmRuleError(`${where}: types[${i}].alarms[${j}]`, `a second rule with id "${r.id}" (rule names must differ within a type)`);
      out.push(r);
    }
  }
  return out;
}

/** The built-in demo types' rules (devices/types/demo.json). */
export function builtInTypeRules(): AlarmRule[] {
  const r = typeRulesOf(DEMO_DEVICE_TYPES, 'devices/types/demo.json');
  if (r instanceof Error) throw r;
  return r;
}

export class RuleBook {
  private typeRules: AlarmRule[];
  private readonly apiRules = new Map<string, AlarmRule>();
  private readonly file: RecordLog;
  private cache = new Map<string, RuleSet>();
  private readonly removeListeners: ((rule: AlarmRule) => void)[] = [];
  private readonly apiListeners: ((rule: AlarmRule, deleted: boolean) => void)[] = [];
  /** Changes whenever any rule changes (the evaluator rebuilds a device's state when it differs). */
  version = 0;

  constructor(dir: string, opts: { log?: Logger | undefined; typeRules?: AlarmRule[]; fs?: RecordFs; retryMs?: number } = {}) {
    this.typeRules = opts.typeRules ?? builtInTypeRules();
    this.file = new RecordLog(join(dir, 'alarm-rules.jsonl'), {
      log: opts.log,
      ...(opts.fs ? { fs: opts.fs } : {}),
      ...(opts.retryMs ? { retryMs: opts.retryMs } : {}),
      consequence: 'new and deleted alarm rules are refused (ALARM_RULE_NOT_PERSISTED) until it can be rewritten',
    });
  }

  get failure(): FileWriteError | undefined {
    return this.file.failure;
  }

  get refused(): number {
    return this.file.refused;
  }

  /** A rule is gone (deleted through the API, or no longer in the types file). */
  onRemove(l: (rule: AlarmRule) => void): void {
    this.removeListeners.push(l);
  }

  /** A rule added or deleted through this instance's API (the cluster passes it on). */
  onApiChange(l: (rule: AlarmRule, deleted: boolean) => void): void {
    this.apiListeners.push(l);
  }

  /**
   * A rule another instance's API took: run and kept here too. False when the file did not take
   * it now (it is written with the file's rewrite once the disk recovers).
   */
  adopt(input: unknown): boolean {
    const rule = parseAlarmRule(input, 'a rule from another gateway instance');
    if (rule instanceof Error || rule.id === '' || this.get(rule.id)) return true;
    const written = this.file.append(encodeRecord(JSON.stringify(rule)));
    this.apiRules.set(rule.id, rule);
    this.changed();
    return written;
  }

  /** A rule another instance's API deleted. */
  drop(id: string): void {
    const rule = this.apiRules.get(id);
    if (!rule) return;
    // Deleted here even when the file refuses: it is rewritten from what is kept once it recovers.
    this.file.append(encodeRecord(JSON.stringify({ deleted: id })));
    this.apiRules.delete(id);
    this.changed();
    for (const l of this.removeListeners) l(rule);
  }

  /** Loads the API's rules the last run left, then opens the file for appends. */
  start(): void {
    this.file.load((text) => {
      try {
        const r = JSON.parse(text) as { deleted?: unknown } & Partial<AlarmRule>;
        if (typeof r.deleted === 'string') return this.apiRules.delete(r.deleted), true;
        const rule = parseAlarmRule(r, 'alarm-rules.jsonl');
        if (rule instanceof Error || rule.id === '') return false;
        this.apiRules.set(rule.id, rule);
        return true;
      } catch {
        return false;
      }
    });
    this.file.open(() => [...this.apiRules.values()].map((r) => JSON.stringify(r)));
    this.changed();
  }

  close(): void {
    this.file.close(true);
  }

  /** Replaces the types' rules (the types file loader calls this; ids `type:<type>:<name>`). */
  setTypeRules(rules: AlarmRule[]): void {
    const kept = new Set(rules.map((r) => r.id));
    const gone = this.typeRules.filter((r) => !kept.has(r.id));
    this.typeRules = rules.map((r) => ({ ...r, source: 'types' as const }));
    this.changed();
    for (const r of gone) for (const l of this.removeListeners) l(r);
  }

  all(): AlarmRule[] {
    return [...this.typeRules, ...this.apiRules.values()];
  }

  get(id: string): AlarmRule | undefined {
    return this.apiRules.get(id) ?? this.typeRules.find((r) => r.id === id);
  }

  /**
   * Adds a rule from the API. Throws AlarmRuleError (bad rule), AlarmError (ALARM_RULE_EXISTS),
   * or FileWriteError when the file cannot take it (nothing is added then).
   */
  add(input: unknown): AlarmRule {
    const unknown = unknownRuleField(input);
    if (unknown !== undefined) throw new AlarmRuleError('the rule', `unknown field ${unknown}: a rule takes id, name, severity, deviceType or deviceId, condition and webhook (README "Alarms")`);
    if (typeof input === 'object' && input !== null && 'source' in input) {
      const { source: _ignored, ...rest } = input as Record<string, unknown>;
      input = rest;
    }
    const rule = parseAlarmRule(input, 'the rule');
    if (rule instanceof Error) throw rule;
    if (rule.id === '') rule.id = `rule-${randomUUID()}`;
    if (rule.id.startsWith('type:')) throw new AlarmError('ALARM_RULE_EXISTS', 'ids starting with "type:" are the device types\' rules; choose another id or leave it out');
    if (this.get(rule.id)) throw new AlarmError('ALARM_RULE_EXISTS', `a rule "${rule.id}" exists; delete it first, or choose another id`);
    // A type's rule is checked against the type in force (a device's own rule cannot be: its type
    // may come from a registry entry or change with it).
    if (rule.deviceType !== undefined) {
      const spec = deviceType(rule.deviceType);
      if (spec === undefined) throw new AlarmRuleError('the rule', `deviceType "${rule.deviceType}" is not a device type (GET /api/device-types lists them)`);
      const problem = channelProblem(rule.condition, spec.type, spec.channels);
      if (problem) throw new AlarmRuleError('the rule', problem);
    }
    if (this.apiRules.size >= MAX_API_RULES) throw new AlarmError('ALARM_RULE_EXISTS', `there are ${MAX_API_RULES} API rules already (the most kept); delete some first`);
    if (!this.file.append(encodeRecord(JSON.stringify(rule)))) throw this.writeError();
    this.apiRules.set(rule.id, rule);
    this.changed();
    for (const l of this.apiListeners) l(rule, false);
    return rule;
  }

  /** Deletes an API rule; its open alarms are cleared (onRemove). */
  remove(id: string): AlarmRule {
    const rule = this.apiRules.get(id);
    if (!rule) {
      if (this.typeRules.some((r) => r.id === id)) throw new AlarmError('ALARM_RULE_READ_ONLY', `rule "${id}" comes from the device types; change it there`);
      throw new AlarmError('ALARM_RULE_NOT_FOUND', `no alarm rule "${id}"`);
    }
    if (!this.file.append(encodeRecord(JSON.stringify({ deleted: id })))) throw this.writeError();
    this.apiRules.delete(id);
    this.changed();
    for (const l of this.removeListeners) l(rule);
    for (const l of this.apiListeners) l(rule, true);
    return rule;
  }

  /** The compiled rules a device runs: its type's, then its own. */
  rulesFor(device: DeviceState): RuleSet {
    const index = (this.index ??= this.buildIndex());
    const own = index.byDevice.get(device.id);
    const key = own ? `id:${device.id}` : `type:${device.type ?? ''}`;
    let set = this.cache.get(key);
    if (!set) {
      const typed = device.type === undefined ? [] : index.byType.get(device.type) ?? [];
      this.cache.set(key, (set = new RuleSet(own ? [...typed, ...own] : typed)));
    }
    return set;
  }

  /** Rules by the type and by the device they watch (so a device's set costs its own rules only). */
  private index: { byType: Map<string, AlarmRule[]>; byDevice: Map<string, AlarmRule[]> } | undefined;

  private buildIndex(): NonNullable<RuleBook['index']> {
    const byType = new Map<string, AlarmRule[]>();
    const byDevice = new Map<string, AlarmRule[]>();
    const add = (m: Map<string, AlarmRule[]>, k: string, r: AlarmRule) => {
      const list = m.get(k);
      if (list) list.push(r);
      else m.set(k, [r]);
    };
    for (const r of this.typeRules) if (r.deviceType !== undefined) add(byType, r.deviceType, r);
    for (const r of this.apiRules.values()) {
      if (r.deviceType !== undefined) add(byType, r.deviceType, r);
      else if (r.deviceId !== undefined) add(byDevice, r.deviceId, r);
    }
    return { byType, byDevice };
  }

  private changed(): void {
    this.version++;
    this.cache = new Map();
    this.index = undefined;
  }

  private writeError(): FileWriteError {
    return this.file.failure ?? new FileWriteError(this.file.path, 'write', Object.assign(new Error('the rule file is closed'), { code: 'EBADF' }));
  }
}
