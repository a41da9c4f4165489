/**
 * Runs the alarm rules on each new frame ingest takes (its onTelemetry: never a duplicate, never a
 * refused frame), incrementally: per rule and device a few numbers (state, when the condition
 * began, the last reading's time and value), updated in place. Nothing is allocated per reading
 * unless an alarm is raised or cleared.
 *
 * Device time decides: a reading older than the last one a rule evaluated for that device (a
 * reordered or late frame) changes no state and is counted (`reordered`). A rule with `forMs`
 * raises at the first reading whose time is at least `forMs` after the first of an unbroken run of
 * readings meeting the condition. `silent` rules run in one coarse sweep over the devices held here
 * (gateway time), never per-reading timers.
 */
import type { AlarmRule } from '../../devices/api/json.js';
import type { FrameHeader, TelemetryBatch } from '../../devices/codec/index.js';
import type { DeviceState } from '../devices.js';
import { Kind, NO_RULES, type RuleSet } from './rule-set.js';

const NORMAL = 0;
/** The condition holds, for less than forMs so far. */
const PENDING = 1;
const RAISED = 2;

/** A rule's condition came true for a device (raise) or stopped being true (clear). */
export interface RaiseEvent {
  rule: AlarmRule;
  device: DeviceState;
  /** null for silent. */
  value: number | boolean | null;
  /** Device time of the reading (gateway time for silent). */
  at: number;
}
export type RaiseListener = (e: RaiseEvent) => void;
export type ClearListener = (rule: AlarmRule, device: DeviceState, at: number) => void;

/** Where the evaluator gets each device's rules, and whether an alarm is open (after a restart). */
export interface RuleSource {
  /** Changes whenever any rule changes. */
  readonly version: number;
  rulesFor(device: DeviceState): RuleSet;
}

/** Per rule, in one array (one allocation, neighbours in memory): state, run start, last time, last value. */
const STRIDE = 4;
const STATE = 0;
const SINCE = 1;
const LAST_T = 2;
const LAST_V = 3;

/** The state of one device's rules (kept on the device: DeviceState.alarms, no lookup per frame). */
const NO_STATE = new Float64Array(0);

export class DeviceRules {
  version = -1;
  /** The device's type when its rules were picked (a registry edit or a types reload may change it). */
  type: string | undefined;
  set: RuleSet = NO_RULES;
  s = NO_STATE;
  /** True for the one state every device of a type without rules shares (never written per device). */
  constructor(readonly shared = false) {}
}

export class Evaluator {
  private readonly raiseListeners: RaiseListener[] = [];
  private readonly clearListeners: ClearListener[] = [];
  /** Readings older than the last one evaluated for their rule and device (no state change). */
  reordered = 0;
  /** The shared states of devices without rules, by type, for the rules' `emptyVersion`. */
  private readonly empty = new Map<string | undefined, DeviceRules>();
  private emptyVersion = -1;
  /** Readings evaluated against at least one rule. */
  evaluated = 0;

  constructor(
    private readonly rules: RuleSource,
    /** True when an alarm of this rule and device is not cleared (restored after a restart). */
    private readonly isOpen: (ruleId: string, deviceId: string) => boolean,
    /** When this gateway started: a device not heard from since is silent from then. */
    private readonly startedAt = Date.now(),
  ) {}

  onRaise(l: RaiseListener): void {
    this.raiseListeners.push(l);
  }

  onClear(l: ClearListener): void {
    this.clearListeners.push(l);
  }

  /** Subscribes to ingest: one listener, new frames of devices held here only. */
  listen(from: { ingest: { onTelemetry(l: (device: DeviceState, h: FrameHeader, batch: TelemetryBatch) => void): void } }): void {
    from.ingest.onTelemetry((device, h, batch) => this.frame(device, h.timestamp, batch, Date.now()));
  }

  /** Evaluates one frame's readings (time = frame time + each reading's offset). */
  frame(device: DeviceState, time: number, batch: TelemetryBatch, now: number): void {
    const d = this.stateOf(device);
    const set = d.set;
    if (set.size === 0) return;
    const s = d.s;
    // Any data ends a silence.
    for (let k = 0; k < set.silent.length; k++) {
      const o = set.silent[k]! * STRIDE;
      if (s[o + STATE] === RAISED) {
        s[o + STATE] = NORMAL;
        this.clear(set.rules[set.silent[k]!]!.rule, device, now);
      }
    }
    const first = set.first;
    const next = set.next;
    const kinds = set.kind;
    const as = set.a;
    const bs = set.b;
    const hs = set.hysteresis;
    const channels = batch.channels;
    const values = batch.values;
    const offsets = batch.offsets;
    this.evaluated += batch.count;
    for (let j = 0; j < batch.count; j++) {
      let i = first[channels[j]!]!;
      if (i < 0) continue;
      const v = values[j]!;
      const t = time + offsets[j]!;
      for (; i >= 0; i = next[i]!) {
        const o = i * STRIDE;
        const lastT = s[o + LAST_T]!;
        if (t < lastT) {
          this.reordered++;
          continue;
        }
        const a = as[i]!;
        let on: boolean;
        let off: boolean;
        switch (kinds[i]) {
          case Kind.Above:
            on = v > a;
            off = v <= a - hs[i]!;
            break;
          case Kind.Below:
            on = v < a;
            off = v >= a + hs[i]!;
            break;
          case Kind.Outside: {
            const b = bs[i]!;
            const h = hs[i]!;
            on = v < a || v > b;
            off = v >= a + h && v <= b - h;
            break;
          }
          case Kind.True:
            on = v !== 0;
            off = !on;
            break;
          case Kind.Rate: {
            const lastV = s[o + LAST_V]!;
            s[o + LAST_T] = t;
            s[o + LAST_V] = v;
            // The first reading (or one at the same instant) has no rate.
            if (lastT === -Infinity || t === lastT) continue;
            on = (Math.abs(v - lastV) * 1000) / (t - lastT) > a;
            off = !on;
            break;
          }
          default:
            continue;
        }
        s[o + LAST_T] = t;
        s[o + LAST_V] = v;
        const state = s[o + STATE];
        if (state === RAISED) {
          if (off) {
            s[o + STATE] = NORMAL;
            this.clear(set.rules[i]!.rule, device, t);
          }
        } else if (on) {
          if (state === NORMAL) {
            s[o + SINCE] = t;
            s[o + STATE] = PENDING;
          }
          if (t - s[o + SINCE]! >= set.forMs[i]!) {
            s[o + STATE] = RAISED;
            this.raise(set.rules[i]!.rule, device, kinds[i] === Kind.True ? true : v, t);
          }
        } else if (state === PENDING) {
          s[o + STATE] = NORMAL;
        }
      }
    }
  }

  /**
   * The silent sweep: a device whose rules run here (`mine`: held here, or last held here) with no
   * data for a rule's forMs gets its alarm. `devices` is every device known.
   */
  sweep(devices: Iterable<DeviceState>, now: number, mine: (device: DeviceState) => boolean): void {
    for (const device of devices) {
      if (!mine(device)) continue;
      const d = this.stateOf(device);
      const set = d.set;
      if (set.silent.length === 0) continue;
      const heard = Math.max(device.lastSeen, this.startedAt);
      for (let k = 0; k < set.silent.length; k++) {
        const i = set.silent[k]!;
        if (d.s[i * STRIDE + STATE] !== RAISED && now - heard >= set.forMs[i]!) {
          d.s[i * STRIDE + STATE] = RAISED;
          this.raise(set.rules[i]!.rule, device, null, now);
        }
      }
    }
  }

  /** The device's rule state, rebuilt when the rules changed (each surviving rule keeps its state). */
  private stateOf(device: DeviceState): DeviceRules {
    const version = this.rules.version;
    let d = device.alarms;
    if (d !== undefined && d.version === version && d.type === device.type) return d;
    const set = this.rules.rulesFor(device);
    if (set.size === 0 && (d === undefined || d.shared || d.set.size === 0)) {
      // No rules: one state shared by every such device of the type, so an idle fleet without rules
      // costs nothing per device (the sweep visits every device).
      if (this.emptyVersion !== version) {
        this.empty.clear();
        this.emptyVersion = version;
      }
      let e = this.empty.get(device.type);
      if (e === undefined) {
        e = new DeviceRules(true);
        e.version = version;
        e.type = device.type;
        this.empty.set(device.type, e);
      }
      return (device.alarms = e);
    }
    if (d === undefined || d.shared) d = device.alarms = new DeviceRules();
    const n = set.size;
    const old = d.set;
    const s = n === 0 ? NO_STATE : new Float64Array(n * STRIDE);
    for (let i = 0; i < n; i++) {
      const rule = set.rules[i]!.rule;
      const j = old.rules.findIndex((r) => r.rule === rule);
      if (j >= 0) s.set(d.s.subarray(j * STRIDE, (j + 1) * STRIDE), i * STRIDE);
      else {
        s[i * STRIDE + LAST_T] = -Infinity;
        // An alarm still open from before (a restart): the condition's end clears it.
        if (this.isOpen(rule.id, device.id)) s[i * STRIDE + STATE] = RAISED;
      }
    }
    d.version = this.rules.version;
    d.type = device.type;
    d.set = set;
    d.s = s;
    return d;
  }

  private raise(rule: AlarmRule, device: DeviceState, value: number | boolean | null, at: number): void {
    const e: RaiseEvent = { rule, device, value, at };
    for (const l of this.raiseListeners) l(e);
  }

  private clear(rule: AlarmRule, device: DeviceState, at: number): void {
    for (const l of this.clearListeners) l(rule, device, at);
  }
}
