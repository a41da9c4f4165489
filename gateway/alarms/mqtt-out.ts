/**
 * Alarm changes for integrations over MQTT: each change of an alarm owned here is published as an
 * AlarmMessage on `alarms/{deviceId}` at QoS 1, on the embedded broker (integrations connect as
 * `$operator` with the operator token) or, in bridge mode, on the external broker. A publish the
 * broker does not take (bridge disconnected) is counted and logged, never retried: the alarm is
 * in GET /api/alarms and the webhook keeps its own retries.
 */
import type { Alarm, AlarmMessage } from '../../devices/api/json.js';
import type { Logger } from '../log.js';
import { alarmsTopic } from '../mqtt/topics.js';

export interface AlarmPublishTarget {
  publish(topic: string, payload: Buffer, done: (err?: Error) => void): void;
}

export class AlarmMqtt {
  /** Publishes the broker took, and those it did not (metrics). */
  readonly counts = { published: 0, failed: 0 };

  constructor(
    private readonly target: AlarmPublishTarget,
    private readonly log?: Logger,
  ) {}

  listen(from: { onChange(l: (a: Alarm) => void): void }): void {
    from.onChange((a) => this.publish(a));
  }

  private publish(a: Alarm): void {
    const payload = Buffer.from(JSON.stringify({ type: 'alarm', full: false, alarms: [a] } satisfies AlarmMessage));
    this.target.publish(alarmsTopic(a.deviceId), payload, (err) => {
      if (!err) return void this.counts.published++;
      this.counts.failed++;
      this.log?.warn({ alarm: a.id, device: a.deviceId, err: err.message }, 'an alarm change was not published on MQTT (the broker did not take it); it is in GET /api/alarms');
    });
  }
}
