/**
 * What the page knows of alarms: every alarm it has seen (the live `alarms` stream and
 * `GET /api/alarms`, merged by id), what a device's badge says, which alarms a filter shows, and the
 * marks on a device's charts. No DOM here: the views (alarm-list.ts, the fleet row, the device page)
 * read it and redraw on `change`.
 *
 * Merging: an alarm only ever gains transitions, so of two copies the one with more is the newer
 * (a list fetched before a live update must not undo it). The live snapshot (`full`) holds every
 * alarm not cleared: one the page thought open but the snapshot lacks was cleared while the page was
 * not listening, so it is dropped until a fetch brings its cleared record.
 */
import { Emitter } from './emitter.js';
import type { Alarm, AlarmSeverity, AlarmState, AlarmTransition } from './types.js';

/** Most severe first. */
export const SEVERITIES: readonly AlarmSeverity[] = ['critical', 'major', 'minor', 'warning'];
export const STATES: readonly AlarmState[] = ['active', 'acknowledged', 'cleared'];
/** Cleared alarms kept beyond this many are forgotten, oldest first (open ones are always kept). */
export const MAX_KEPT = 2000;

/** 0 for critical … 3 for warning; unknown severities rank last. */
export function severityRank(s: AlarmSeverity): number {
  const i = SEVERITIES.indexOf(s);
  return i < 0 ? SEVERITIES.length : i;
}

export function isOpen(a: Alarm): boolean {
  return a.state !== 'cleared';
}

/** Newest first by `raisedAt`, then by id, so the order never flickers between equal times. */
export function newestFirst(a: Alarm, b: Alarm): number {
  return b.raisedAt - a.raisedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * The newer of two copies of one alarm: the one with more transitions. On a tie the kept one (every
 * change of an alarm is a transition, so equal counts are the same alarm, and nothing is redrawn).
 */
export function newer(kept: Alarm | undefined, incoming: Alarm): Alarm {
  if (!kept) return incoming;
  return (incoming.transitions?.length ?? 0) > (kept.transitions?.length ?? 0) ? incoming : kept;
}

/** What a fleet row and a device page show: how many alarms are open and the worst of them. */
export interface AlarmBadge {
  /** Not cleared. */
  open: number;
  /** Not acknowledged yet. */
  active: number;
  /** The most severe open alarm's severity. */
  severity: AlarmSeverity;
}

/** The badge for a set of alarms (those not cleared count); undefined when none is open. */
export function badgeOf(alarms: Iterable<Alarm>): AlarmBadge | undefined {
  let open = 0;
  let active = 0;
  let severity: AlarmSeverity | undefined;
  for (const a of alarms) {
    if (!isOpen(a)) continue;
    open++;
    if (a.state === 'active') active++;
    if (severity === undefined || severityRank(a.severity) < severityRank(severity)) severity = a.severity;
  }
  return severity === undefined ? undefined : { open, active, severity };
}

/** "2 alarms · critical", "1 alarm · minor (acknowledged)". */
export function badgeText(b: AlarmBadge): string {
  const n = `${b.open} alarm${b.open === 1 ? '' : 's'} · ${b.severity}`;
  return b.active === 0 ? `${n} (acknowledged)` : n;
}

export type StateFilter = 'open' | AlarmState | 'all';

/** The list view's filter; `device` matches ids containing it (case-insensitive). */
export interface AlarmFilter {
  severity: AlarmSeverity | 'all';
  state: StateFilter;
  device: string;
}

export const DEFAULT_FILTER: AlarmFilter = { severity: 'all', state: 'open', device: '' };
export const STATE_FILTERS: readonly StateFilter[] = ['open', 'active', 'acknowledged', 'cleared', 'all'];

export function matches(a: Alarm, f: AlarmFilter): boolean {
  if (f.severity !== 'all' && a.severity !== f.severity) return false;
  if (f.state === 'open' ? !isOpen(a) : f.state !== 'all' && a.state !== f.state) return false;
  return !f.device || a.deviceId.toLowerCase().includes(f.device.toLowerCase());
}

/** The filter as the query of `#/alarms?…` (defaults left out), so a filtered list can be linked to. */
export function filterQuery(f: AlarmFilter): string {
  const p = new URLSearchParams();
  if (f.state !== DEFAULT_FILTER.state) p.set('state', f.state);
  if (f.severity !== 'all') p.set('severity', f.severity);
  if (f.device) p.set('device', f.device);
  return p.toString();
}

/** Reads `state=…&severity=…&device=…`; anything unknown falls back to the default. */
export function parseFilter(query: string): AlarmFilter {
  const p = new URLSearchParams(query);
  const state = p.get('state') as StateFilter | null;
  const severity = p.get('severity') as AlarmSeverity | null;
  return {
    state: state && STATE_FILTERS.includes(state) ? state : DEFAULT_FILTER.state,
    severity: severity && SEVERITIES.includes(severity) ? severity : 'all',
    device: (p.get('device') ?? '').trim(),
  };
}

/** The transition that made the alarm what it is now. */
export function lastTransition(a: Alarm): AlarmTransition | undefined {
  return a.transitions?.[a.transitions.length - 1];
}

/** A vertical mark on a chart: where an alarm was raised. */
export interface AlarmMark {
  at: number;
  severity: AlarmSeverity;
  /** The alarm is cleared: drawn dashed. */
  cleared: boolean;
  label: string;
}

/** Marks for one channel's chart: alarms on that channel, and the device-wide ones (`silent`: channel null). */
export function marksFor(alarms: Iterable<Alarm>, channel: number): AlarmMark[] {
  const marks: AlarmMark[] = [];
  for (const a of alarms) {
    if (a.channel !== null && a.channel !== channel) continue;
    marks.push({ at: a.raisedAt, severity: a.severity, cleared: !isOpen(a), label: a.ruleName });
  }
  return marks.sort((x, y) => x.at - y.at);
}

export interface AlarmChange {
  /** Alarms added, changed or dropped. */
  ids: ReadonlySet<string>;
  /** Devices whose alarms changed: their badges and marks need redrawing. */
  devices: ReadonlySet<string>;
  /** Open alarms a snapshot lacked were dropped: they were cleared meanwhile, and a fetch brings their cleared records. */
  stale: boolean;
}

export class AlarmStore extends Emitter<{ change: [AlarmChange] }> {
  readonly alarms = new Map<string, Alarm>();
  /** Alarm ids per device. */
  private readonly byDevice = new Map<string, Set<string>>();

  /** A message of the live `alarms` stream. */
  apply(msg: { full: boolean; alarms: readonly Alarm[] }): void {
    const ids = new Set<string>();
    const devices = new Set<string>();
    let stale = false;
    if (msg.full) {
      const present = new Set(msg.alarms.map((a) => a?.id));
      for (const a of [...this.alarms.values()]) {
        if (isOpen(a) && !present.has(a.id)) {
          stale = true;
          this.remove(a);
          ids.add(a.id);
          devices.add(a.deviceId);
        }
      }
    }
    this.merge(msg.alarms, ids, devices);
    this.trim(ids, devices);
    if (ids.size > 0) this.emit('change', { ids, devices, stale });
  }

  /** Alarms from the HTTP API (a list, or an action's answer). */
  upsert(list: readonly Alarm[]): void {
    const ids = new Set<string>();
    const devices = new Set<string>();
    this.merge(list, ids, devices);
    this.trim(ids, devices);
    if (ids.size > 0) this.emit('change', { ids, devices, stale: false });
  }

  get(id: string): Alarm | undefined {
    return this.alarms.get(id);
  }

  /** Every alarm known of a device, cleared ones too. */
  forDevice(deviceId: string): Alarm[] {
    const set = this.byDevice.get(deviceId);
    return set ? [...set].map((id) => this.alarms.get(id)!) : [];
  }

  badge(deviceId: string): AlarmBadge | undefined {
    const set = this.byDevice.get(deviceId);
    return set ? badgeOf([...set].map((id) => this.alarms.get(id)!)) : undefined;
  }

  /** The whole fleet's badge (the top bar's). */
  total(): AlarmBadge | undefined {
    return badgeOf(this.alarms.values());
  }

  /** What a filter shows, newest first. */
  list(f: AlarmFilter): Alarm[] {
    const out: Alarm[] = [];
    for (const a of this.alarms.values()) if (matches(a, f)) out.push(a);
    return out.sort(newestFirst);
  }

  private merge(list: readonly Alarm[], ids: Set<string>, devices: Set<string>): void {
    for (const a of list) {
      if (!a || typeof a.id !== 'string' || typeof a.deviceId !== 'string') continue;
      const kept = this.alarms.get(a.id);
      const next = newer(kept, a);
      if (next === kept) continue;
      this.alarms.set(a.id, next);
      let set = this.byDevice.get(a.deviceId);
      if (!set) this.byDevice.set(a.deviceId, (set = new Set()));
      set.add(a.id);
      ids.add(a.id);
      devices.add(a.deviceId);
    }
  }

  private remove(a: Alarm): void {
    this.alarms.delete(a.id);
    const set = this.byDevice.get(a.deviceId);
    set?.delete(a.id);
    if (set?.size === 0) this.byDevice.delete(a.deviceId);
  }

  /** Forgets the oldest cleared alarms beyond MAX_KEPT. */
  private trim(ids: Set<string>, devices: Set<string>): void {
    if (this.alarms.size <= MAX_KEPT) return;
    const cleared = [...this.alarms.values()].filter((a) => !isOpen(a)).sort(newestFirst);
    for (let i = cleared.length - 1; i >= 0 && this.alarms.size > MAX_KEPT; i--) {
      const a = cleared[i]!;
      this.remove(a);
      ids.add(a.id);
      devices.add(a.deviceId);
    }
  }
}
