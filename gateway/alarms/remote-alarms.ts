/**
 * In a cluster: the other instances' alarms as they published them (cluster/alarm-relay.ts), with
 * the instance owning each. Read-only here: an operator's action on one goes to its owner.
 */
import type { Alarm } from '../../devices/api/json.js';
import type { AlarmQuery } from './alarm-book.js';

export interface RemoteAlarm {
  alarm: Alarm;
  instance: string;
}

export class RemoteAlarms {
  private readonly byId = new Map<string, RemoteAlarm>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): RemoteAlarm | undefined {
    return this.byId.get(id);
  }

  /**
   * Takes an owner's record; false when it is older than what is shown (an action taken here is
   * shown ahead of the owner's echo of the state before it).
   */
  apply(instance: string, a: Alarm): boolean {
    const known = this.byId.get(a.id);
    if (known && known.alarm.transitions.length > a.transitions.length) return false;
    this.byId.set(a.id, { alarm: a, instance });
    return true;
  }

  forget(id: string): void {
    this.byId.delete(id);
  }

  /** The open alarm of a rule and device another instance owns (a device that moved here). */
  openFor(ruleId: string, deviceId: string): Alarm | undefined {
    for (const { alarm: a } of this.byId.values()) if (a.ruleId === ruleId && a.deviceId === deviceId && a.state !== 'cleared') return a;
    return undefined;
  }

  /** Those matching the query's filters (not its limit), appended to `out`. */
  matching(q: AlarmQuery, out: Alarm[]): Alarm[] {
    for (const { alarm: a } of this.byId.values()) {
      if (q.states && !q.states.has(a.state)) continue;
      if (q.severities && !q.severities.has(a.severity)) continue;
      if (q.device !== undefined && a.deviceId !== q.device) continue;
      out.push(a);
    }
    return out;
  }

  /** Alarms not cleared, appended to `out`. */
  open(out: Alarm[]): Alarm[] {
    for (const { alarm: a } of this.byId.values()) if (a.state !== 'cleared') out.push(a);
    return out;
  }

  /** Adds the open ones to counts by `severity\0state`. */
  countInto(m: Map<string, number>): Map<string, number> {
    for (const { alarm: a } of this.byId.values()) {
      if (a.state === 'cleared') continue;
      const k = `${a.severity}\u0000${a.state}`;
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return m;
  }
}
