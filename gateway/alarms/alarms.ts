/**
 * Alarms, put together: the rules (rules.ts), their evaluation on ingest's new frames
 * (evaluator.ts), the alarms' lifecycle and file (alarm-book.ts), and webhooks (webhooks.ts).
 * One subscription on ingest; everyone else hears alarm changes through onChange (this instance's
 * own: webhooks, MQTT, the backbone) or onShown (also other instances' alarms: live views).
 *
 * In a cluster a device's rules run on the instance holding it; the others keep a read view of its
 * alarms (applyRemote, from the backbone). An operator's action on an alarm another instance owns
 * is passed to that instance (onRemoteAction) and shown at once; the owner writes it.
 */
import type { Alarm, AlarmRule } from '../../devices/api/json.js';
import { deviceType } from '../../devices/device-types.js';
import type { DeviceLink, DeviceState, DeviceTable } from '../devices.js';
import type { Logger } from '../log.js';
import { AlarmBook, type AlarmListener, type AlarmQuery } from './alarm-book.js';
import { AlarmError } from './alarm-error.js';
import { Evaluator, type RaiseEvent } from './evaluator.js';
import { RemoteAlarms } from './remote-alarms.js';
import { describe } from './rule.js';
import { RuleBook } from './rules.js';
import { Webhooks, type WebhookOptions } from './webhooks.js';

export interface AlarmOptions {
  log?: Logger | undefined;
  /** Cleared alarms kept (oldest forgotten first). */
  keepCleared?: number;
  /** How often the silent sweep runs (ms). */
  sweepMs?: number;
  webhooks?: WebhookOptions;
  /** The types' rules (default: the built-in demo types'). */
  typeRules?: AlarmRule[];
  /**
   * Part of a cluster: a device's silent rules run on the instance that holds it or held it last
   * (a device no instance has held since this one started is left to the one that will).
   */
  clustered?: boolean;
}

export const DEFAULT_SWEEP_MS = 1000;

/** An operator's action on an alarm another instance owns, for that instance. */
export interface RemoteAction {
  instance: string;
  alarmId: string;
  /** `rule-clear`: the device's rules, now running on another instance, saw the condition end. */
  action: 'acknowledge' | 'clear' | 'rule-clear';
  note?: string;
  at: number;
}

export class Alarms {
  readonly rules: RuleBook;
  readonly book: AlarmBook;
  readonly evaluator: Evaluator;
  readonly webhooks: Webhooks;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Other instances' alarms (in a cluster). */
  private readonly remote = new RemoteAlarms();
  private readonly shownListeners: AlarmListener[] = [];
  private readonly remoteActionListeners: ((a: RemoteAction) => void)[] = [];
  /** A rule being deleted: its alarms' clears still go to its webhook. */
  private removing: AlarmRule | undefined;
  /** In a cluster: devices held here, or held here last (presence). */
  private readonly heldHere = new WeakSet<DeviceState>();

  constructor(
    dataDir: string,
    private readonly devices: DeviceTable,
    private readonly opts: AlarmOptions = {},
  ) {
    this.rules = new RuleBook(dataDir, { log: opts.log, ...(opts.typeRules ? { typeRules: opts.typeRules } : {}) });
    this.book = new AlarmBook(dataDir, { log: opts.log, ...(opts.keepCleared ? { keepCleared: opts.keepCleared } : {}) });
    this.evaluator = new Evaluator(this.rules, (ruleId, deviceId) => this.openFor(ruleId, deviceId) !== undefined);
    this.webhooks = new Webhooks({ log: opts.log, ...opts.webhooks });
    this.evaluator.onRaise((e) => this.raised(e));
    this.evaluator.onClear((rule, device) => this.ruleCleared(rule.id, device.id));
    // A rule that is gone leaves no alarm open that nothing could clear.
    this.rules.onRemove((rule) => {
      this.removing = rule;
      for (const a of [...this.book.openAlarms()]) if (a.ruleId === rule.id) this.book.ruleClear(rule.id, a.deviceId, Date.now(), 'the rule was deleted');
      this.removing = undefined;
    });
    this.book.onChange((a) => {
      const rule = this.rules.get(a.ruleId) ?? (this.removing?.id === a.ruleId ? this.removing : undefined);
      this.webhooks.notify(a, rule?.webhook);
      for (const l of this.shownListeners) l(a);
    });
  }

  /** Every change shown here: this instance's alarms and, in a cluster, the others'. */
  onShown(l: AlarmListener): void {
    this.shownListeners.push(l);
  }

  /** An operator here acted on another instance's alarm: pass it on to that instance. */
  onRemoteAction(l: (a: RemoteAction) => void): void {
    this.remoteActionListeners.push(l);
  }

  /** Another instance's alarm, as it published it. */
  applyRemote(instance: string, a: Alarm): void {
    if (this.book.get(a.id) || !this.remote.apply(instance, a)) return;
    for (const l of this.shownListeners) l(a);
  }

  /** Another instance no longer keeps an alarm (cleared long ago). */
  forgetRemote(id: string): void {
    this.remote.forget(id);
  }

  /** An action another instance passed on for an alarm owned here. */
  applyAction(a: RemoteAction): void {
    try {
      if (a.action === 'acknowledge') this.book.acknowledge(a.alarmId, a.note, a.at);
      else if (a.action === 'clear') this.book.clear(a.alarmId, a.note, a.at);
      else {
        const alarm = this.book.get(a.alarmId);
        if (alarm && alarm.state !== 'cleared') this.book.ruleClear(alarm.ruleId, alarm.deviceId, a.at);
      }
    } catch (err) {
      this.opts.log?.warn({ alarm: a.alarmId, action: a.action, err: (err as Error).message }, 'an operator action passed on from another instance was not applied');
    }
  }

  /** The open alarm of a rule and device, this instance's or (the device moved here) another's. */
  openFor(ruleId: string, deviceId: string): Alarm | undefined {
    const own = this.book.openFor(ruleId, deviceId);
    return own ?? (this.remote.size === 0 ? undefined : this.remote.openFor(ruleId, deviceId));
  }

  /** The condition ended: the open alarm clears, here or at the instance owning it. */
  private ruleCleared(ruleId: string, deviceId: string): void {
    if (this.book.ruleClear(ruleId, deviceId)) return;
    const a = this.openFor(ruleId, deviceId);
    if (a) this.actRemote(a.id, 'rule-clear', undefined);
  }

  /** A device was deleted (device management): its open alarms here clear, by rule, saying why. */
  deviceDeleted(deviceId: string): void {
    const open = [...this.book.openAlarms()].filter((a) => a.deviceId === deviceId);
    for (const a of open) this.book.ruleClear(a.ruleId, deviceId, Date.now(), 'the device was deleted');
  }

  get(id: string): Alarm | undefined {
    return this.book.get(id) ?? this.remote.get(id)?.alarm;
  }

  /** Newest first, this instance's and the cluster's. */
  list(q: AlarmQuery): Alarm[] {
    const out = this.book.list(q);
    if (this.remote.size === 0) return out;
    this.remote.matching(q, out).sort((a, b) => b.transitions.at(-1)!.at - a.transitions.at(-1)!.at || (a.id < b.id ? 1 : -1));
    return out.slice(0, q.limit);
  }

  acknowledge(id: string, note: string | undefined): Alarm {
    return this.book.get(id) || !this.remote.get(id) ? this.book.acknowledge(id, note) : this.actRemote(id, 'acknowledge', note);
  }

  clear(id: string, note: string | undefined): Alarm {
    return this.book.get(id) || !this.remote.get(id) ? this.book.clear(id, note) : this.actRemote(id, 'clear', note);
  }

  private actRemote(id: string, action: RemoteAction['action'], note: string | undefined): Alarm {
    const r = this.remote.get(id)!;
    const a = r.alarm;
    if (a.state === 'cleared') throw new AlarmError('ALARM_ALREADY_CLEARED', `alarm ${id} is cleared already`);
    if (action === 'acknowledge' && a.state === 'acknowledged') throw new AlarmError('ALARM_ALREADY_ACKNOWLEDGED', `alarm ${id} is acknowledged already`);
    const at = Date.now();
    const state = action === 'acknowledge' ? 'acknowledged' : 'cleared';
    const by = action === 'rule-clear' ? 'rule' : 'operator';
    const next: Alarm = { ...a, state, transitions: [...a.transitions, { state, at, by, ...(note !== undefined ? { note } : {}) }] };
    for (const l of this.remoteActionListeners) l({ instance: r.instance, alarmId: id, action, ...(note !== undefined ? { note } : {}), at });
    this.remote.apply(r.instance, next);
    for (const l of this.shownListeners) l(next);
    return next;
  }

  /** Open alarms by severity and state, as shown here (metrics). */
  counts(): Map<string, number> {
    return this.remote.countInto(this.book.counts());
  }

  /** Every change of an alarm, after it was written to the data folder. */
  onChange(l: AlarmListener): void {
    this.book.onChange(l);
  }

  /** Ingest's new frames (the rules), and presence (where a device's silent rules run in a cluster). */
  listen(from: Parameters<Evaluator['listen']>[0] & { presence?: { onConnect(l: (device: DeviceState, link: DeviceLink) => void): void } }): void {
    this.evaluator.listen(from);
    // Only a cluster needs to know where a device was held (and a set entry per device costs memory).
    if (this.opts.clustered) {
      from.presence?.onConnect((device, link) => {
        if (link.instance === undefined) this.heldHere.add(device);
        else this.heldHere.delete(device);
      });
    }
  }

  /** Loads rules and alarms; starts the silent sweep. */
  start(): void {
    this.rules.start();
    this.book.start();
    const every = this.opts.sweepMs ?? DEFAULT_SWEEP_MS;
    const mine = this.opts.clustered ? (d: DeviceState) => this.heldHere.has(d) : (d: DeviceState) => d.link?.instance === undefined;
    this.sweepTimer = setInterval(() => this.evaluator.sweep(this.devices.all(), Date.now(), mine), every);
    this.sweepTimer.unref();
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.webhooks.close();
    this.book.close();
    this.rules.close();
  }

  /** Alarms not cleared (this instance's and the cluster's), for a new live subscriber. */
  openAlarms(): Alarm[] {
    return this.remote.open([...this.book.openAlarms()]);
  }

  private raised(e: RaiseEvent): void {
    // Open at another instance (the device moved here): still one alarm per rule and device.
    if (this.openFor(e.rule.id, e.device.id)) return;
    const c = e.rule.condition;
    const channel = 'channel' in c ? c.channel : null;
    const spec = channel === null ? undefined : deviceType(e.device.type)?.channels.find((ch) => ch.id === channel);
    this.book.raise({
      rule: e.rule,
      deviceId: e.device.id,
      channel,
      value: e.value,
      raisedAt: e.at,
      message: describe(e.rule, e.value, spec?.name, spec?.unit),
    });
  }
}

