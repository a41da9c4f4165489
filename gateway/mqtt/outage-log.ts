/**
 * The log of a gateway MQTT client's broker outages (bridge, cluster backbone). MQTT.js retries
 * every second and reports each failed attempt: an outage is one warning (another only when the
 * error changes), the attempts are debug lines, and the reconnect says how long it lasted.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from '../log.js';

export interface Outage {
  downMs: number;
  attempts: number;
}

export class OutageLog {
  private outage: { since: number; attempts: number; warned: string | undefined } | undefined;

  constructor(
    client: MqttClient,
    private readonly log: Logger,
    private readonly fields: Record<string, unknown>,
    /** The warning for an error, naming what to check. */
    private readonly errorText: string,
  ) {
    client.on('reconnect', () => {
      if (this.outage) this.outage.attempts++;
    });
  }

  /** A client error: warned once per outage and distinct error, else a debug line. */
  error(err: Error): void {
    const outage = this.outage;
    if (outage?.warned === err.message) return this.log.debug({ ...this.fields, err: err.message }, this.errorText);
    this.log.warn({ ...this.fields, err: err.message }, `${this.errorText} (further attempts are logged at debug level)`);
    if (outage) outage.warned = err.message;
    else this.outage = { since: Date.now(), attempts: 0, warned: err.message };
  }

  /** The client went offline: true when this starts an outage (the caller says what it means, once). */
  lost(): boolean {
    if (this.outage) return false;
    this.outage = { since: Date.now(), attempts: 0, warned: undefined };
    return true;
  }

  /** Connected: the outage that ended, if any. */
  back(): Outage | undefined {
    const o = this.outage;
    this.outage = undefined;
    return o && { downMs: Date.now() - o.since, attempts: o.attempts };
  }
}
