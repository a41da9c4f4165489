/**
 * Alarms, put together: the rules (rules.ts), their evaluation on ingest's new frames
 * (evaluator.ts), the alarms' lifecycle and file (alarm-book.ts), and webhooks (webhooks.ts).
 * One subscription on ingest; everyone else hears alarm changes through onChange.
 */
import type { Alarm, AlarmRule } from '../../devices/api/json.js';
import { deviceType } from '../../devices/device-types.js';
import type { DeviceTable } from '../devices.js';
import type { Logger } from '../log.js';
import { AlarmBook, type AlarmListener } from './alarm-book.js';
import { Evaluator, type RaiseEvent } from './evaluator.js';
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
}

export const DEFAULT_SWEEP_MS = 1000;

export class Alarms {
  readonly rules: RuleBook;
  readonly book: AlarmBook;
  readonly evaluator: Evaluator;
  readonly webhooks: Webhooks;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    dataDir: string,
    private readonly devices: DeviceTable,
    private readonly opts: AlarmOptions = {},
  ) {
    this.rules = new RuleBook(dataDir, { log: opts.log, ...(opts.typeRules ? { typeRules: opts.typeRules } : {}) });
    this.book = new AlarmBook(dataDir, { log: opts.log, ...(opts.keepCleared ? { keepCleared: opts.keepCleared } : {}) });
    this.evaluator = new Evaluator(this.rules, (ruleId, deviceId) => this.book.openFor(ruleId, deviceId) !== undefined);
    this.webhooks = new Webhooks({ log: opts.log, ...opts.webhooks });
    this.evaluator.onRaise((e) => this.raised(e));
    this.evaluator.onClear((rule, device) => this.book.ruleClear(rule.id, device.id));
    // A rule that is gone leaves no alarm open that nothing could clear.
    this.rules.onRemove((rule) => {
      for (const a of [...this.book.openAlarms()]) if (a.ruleId === rule.id) this.book.ruleClear(rule.id, a.deviceId, Date.now(), 'the rule was deleted');
    });
    this.book.onChange((a) => this.webhooks.notify(a, this.rules.get(a.ruleId)?.webhook));
  }

  /** Every change of an alarm, after it was written to the data folder. */
  onChange(l: AlarmListener): void {
    this.book.onChange(l);
  }

  listen(from: Parameters<Evaluator['listen']>[0]): void {
    this.evaluator.listen(from);
  }

  /** Loads rules and alarms; starts the silent sweep. */
  start(): void {
    this.rules.start();
    this.book.start();
    const every = this.opts.sweepMs ?? DEFAULT_SWEEP_MS;
    this.sweepTimer = setInterval(() => this.evaluator.sweep(this.devices.all(), Date.now()), every);
    this.sweepTimer.unref();
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.webhooks.close();
    this.book.close();
    this.rules.close();
  }

  /** Alarms not cleared, for a new live subscriber. */
  openAlarms(): Alarm[] {
    return [...this.book.openAlarms()];
  }

  private raised(e: RaiseEvent): void {
    const c = e.rule.condition;
    const channel = 'channel' in c ? c.channel : null;
    const spec = channel === null ? undefined : deviceType(e.device.type)?.channels.find((ch) => ch.id === channel);
    this.book.raise({
      rule: e.rule,
      deviceId: e.device.id,
      channel,
      value: e.value,
      raisedAt: e.at,
      message: `${e.device.id}: ${describe(e.rule, e.value, spec?.name, spec?.unit)}`,
    });
  }
}

