/**
 * Alarms across the cluster. A device's rules run on the instance holding it (its frames reach
 * only that one), which owns the alarms they raise: it writes them to its data folder and publishes
 * each change, retained at QoS 1, on the backbone; every other instance keeps them as a read view
 * (Alarms.applyRemote), so GET /api/alarms, /live and /metrics show the whole cluster's alarms
 * everywhere. An operator's action on an alarm another instance owns goes to that instance
 * (alarm-actions/{instance}), which writes and republishes it. At start an instance republishes
 * every alarm it keeps, under its current instance id. Rules added or deleted through any
 * instance's API travel retained too (alarm-rules/{id}), so every instance runs them.
 */
import type { Alarm } from '../../devices/api/json.js';
import type { Alarms, RemoteAction } from '../alarms/alarms.js';
import type { Logger } from '../log.js';
import type { Backbone } from './backbone.js';

export class AlarmRelay {
  /** Actions for another instance not sent because the backbone was down. */
  actionsUnsent = 0;

  constructor(
    private readonly backbone: Backbone,
    private readonly alarms: Alarms,
    private readonly log: Logger,
  ) {}

  attach(): void {
    const { backbone, alarms } = this;
    alarms.onChange((a) => backbone.publishAlarm(a));
    alarms.book.onForget((a) => backbone.forgetAlarm(a.deviceId, a.id));
    alarms.onRemoteAction((action) => this.send(action));
    alarms.rules.onApiChange((rule, deleted) => backbone.publishAlarmRule(rule.id, deleted ? null : rule));
    backbone.onAlarmRule((id, rule) => {
      if (rule === null) return alarms.rules.drop(id);
      if (!alarms.rules.adopt(rule)) this.log.warn({ rule: id }, 'an alarm rule from another gateway instance runs here but did not reach the data folder yet; it is written once the disk takes writes again');
    });
    backbone.onAlarm((instance, a) => alarms.applyRemote(instance, a));
    backbone.onAlarmGone((id) => alarms.forgetRemote(id));
    backbone.onAlarmAction((json) => {
      const a = JSON.parse(json) as RemoteAction;
      if (typeof a?.alarmId === 'string' && (a.action === 'acknowledge' || a.action === 'clear' || a.action === 'rule-clear')) alarms.applyAction(a);
    });
  }

  /** After backbone.start(): what this instance keeps, under its id now. */
  announce(): void {
    const all: Alarm[] = this.alarms.book.list({ limit: Number.MAX_SAFE_INTEGER });
    for (const a of all) this.backbone.publishAlarm(a);
  }

  private send(a: RemoteAction): void {
    if (this.backbone.sendAlarmAction(a.instance, JSON.stringify(a))) return;
    this.actionsUnsent++;
    this.log.warn({ alarm: a.alarmId, instance: a.instance, action: a.action }, 'an alarm action for another gateway instance was not sent: the cluster backbone is down; act again once it is back');
  }
}
