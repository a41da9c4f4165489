/**
 * Alarm rules as data: the one validator every source of rules goes through (the API, the device
 * types file, the built-in demo types), so a bad rule gets the same searchable code and a message
 * naming where it came from, whatever brought it.
 */
import type { AlarmCondition, AlarmRule, AlarmSeverity } from '../../devices/api/json.js';
import type { ChannelSpec } from '../../devices/types/spec.js';
import { DEVICE_ID_PATTERN } from '../../devices/device-id.js';
import { GatewayError } from '../errors.js';

export const SEVERITIES: readonly AlarmSeverity[] = ['critical', 'major', 'minor', 'warning'];
const KINDS = ['above', 'below', 'outside', 'rate', 'silent', 'true'] as const;
/** Longest `forMs` (7 days): a duration longer than any retention says the unit was wrong. */
const MAX_FOR_MS = 7 * 24 * 3600_000;
const RULE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A rule that cannot be used (code BAD_ALARM_RULE); the message names where it came from. */
export class AlarmRuleError extends GatewayError {
  override name = 'AlarmRuleError';
  constructor(where: string, problem: string) {
    super('BAD_ALARM_RULE', `${where}: ${problem}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * Checks one rule as JSON. `source` is what the rule is (API rules get `source: 'api'`); a rule from
 * the types file without an id gets `type:<deviceType>:<name>`. Never throws: returns the error.
 */
export function parseAlarmRule(json: unknown, where: string, source: AlarmRule['source'] = 'api'): AlarmRule | AlarmRuleError {
  const bad = (problem: string) => new AlarmRuleError(where, problem);
  if (!isObject(json)) return bad('a rule is a JSON object {name, severity, deviceType | deviceId, condition, webhook?}');
  const { name, severity, deviceType, deviceId, condition, webhook } = json;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200 || /[\u0000-\u001f]/.test(name)) return bad('name must be a string of 1 to 200 characters without control characters');
  if (!SEVERITIES.includes(severity as AlarmSeverity)) return bad(`severity must be one of ${SEVERITIES.join(', ')}`);
  if ((deviceType === undefined) === (deviceId === undefined)) return bad('give exactly one of deviceType (every device of a type) and deviceId (one device)');
  if (deviceType !== undefined && (typeof deviceType !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(deviceType))) return bad('deviceType must be a type name of 1 to 64 characters A-Z a-z 0-9 . _ -');
  if (deviceId !== undefined && (typeof deviceId !== 'string' || !DEVICE_ID_PATTERN.test(deviceId))) return bad('deviceId must be a device id (1 to 128 characters from A-Z a-z 0-9 . _ : -)');
  if (webhook !== undefined && !isHttpUrl(webhook)) return bad('webhook must be an http:// or https:// URL');
  const c = parseCondition(condition);
  if (typeof c === 'string') return bad(c);
  let id = json.id;
  if (id === undefined) id = source === 'types' && typeof deviceType === 'string' ? `type:${deviceType}:${name.replace(/[^A-Za-z0-9._-]+/g, '-')}` : undefined;
  if (id !== undefined && (typeof id !== 'string' || !RULE_ID.test(id))) return bad('id must be 1 to 128 characters from A-Z a-z 0-9 . _ : -');
  const rule: AlarmRule = { id: (id as string | undefined) ?? '', name, severity: severity as AlarmSeverity, condition: c, source };
  if (deviceType !== undefined) rule.deviceType = deviceType as string;
  if (deviceId !== undefined) rule.deviceId = deviceId as string;
  if (webhook !== undefined) rule.webhook = webhook as string;
  return rule;
}

const RULE_FIELDS: ReadonlySet<string> = new Set(['id', 'name', 'severity', 'deviceType', 'deviceId', 'condition', 'webhook', 'source']);
/** The fields each kind of condition takes. */
const CONDITION_FIELDS: Record<(typeof KINDS)[number], ReadonlySet<string>> = {
  above: new Set(['kind', 'channel', 'threshold', 'hysteresis', 'forMs']),
  below: new Set(['kind', 'channel', 'threshold', 'hysteresis', 'forMs']),
  outside: new Set(['kind', 'channel', 'min', 'max', 'hysteresis', 'forMs']),
  rate: new Set(['kind', 'channel', 'perSecond']),
  silent: new Set(['kind', 'forMs']),
  true: new Set(['kind', 'channel']),
};

/**
 * The first field of a rule from the API that no rule or condition of its kind has, as
 * `"webook"` or `"condition.forMS"`, or undefined: such a typo would otherwise be dropped and the
 * rule run without what it meant (no webhook, no delay).
 */
export function unknownRuleField(json: unknown): string | undefined {
  if (!isObject(json)) return undefined;
  for (const k in json) if (!RULE_FIELDS.has(k)) return `"${k.slice(0, 64)}"`;
  const c = json.condition;
  const fields = isObject(c) ? CONDITION_FIELDS[c.kind as (typeof KINDS)[number]] : undefined;
  if (isObject(c) && fields) for (const k in c) if (!fields.has(k)) return `"condition.${k.slice(0, 64)}"`;
  return undefined;
}

function isHttpUrl(v: unknown): boolean {
  if (typeof v !== 'string' || v.length > 2000) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function channelOf(v: unknown): number | string {
  if (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255) return v as number;
  // JSON telemetry names channels, so a name is the likely mistake: say where the id is.
  const named = typeof v === 'string' ? ` (the channel's id, not its name "${v.slice(0, 64)}": GET /api/device-types lists both)` : '';
  return `condition.channel must be a channel id from 0 to 255${named}`;
}

function forMsOf(v: unknown): number | undefined | string {
  if (v === undefined) return undefined;
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_FOR_MS ? (v as number) : `condition.forMs must be whole ms from 0 to ${MAX_FOR_MS}`;
}

function hysteresisOf(v: unknown): number | undefined | string {
  if (v === undefined) return undefined;
  return finite(v) && v >= 0 ? v : 'condition.hysteresis must be a number ≥ 0';
}

/** The condition, or what is wrong with it. */
function parseCondition(c: unknown): AlarmCondition | string {
  if (!isObject(c)) return `condition must be an object with a kind (${KINDS.join(', ')})`;
  const kind = c.kind;
  if (kind === 'silent') {
    if (!Number.isInteger(c.forMs) || (c.forMs as number) < 1000 || (c.forMs as number) > MAX_FOR_MS) return `a silent condition needs forMs: whole ms from 1000 to ${MAX_FOR_MS}`;
    return { kind, forMs: c.forMs as number };
  }
  const channel = channelOf(c.channel);
  if (typeof channel === 'string') return channel;
  switch (kind) {
    case 'true':
      return { kind, channel };
    case 'rate':
      if (!finite(c.perSecond) || c.perSecond <= 0) return 'a rate condition needs perSecond: a number > 0 (units per second)';
      return { kind, channel, perSecond: c.perSecond };
    case 'above':
    case 'below': {
      if (!finite(c.threshold)) return `an ${kind} condition needs threshold: a number`;
      const hysteresis = hysteresisOf(c.hysteresis);
      const forMs = forMsOf(c.forMs);
      if (typeof hysteresis === 'string') return hysteresis;
      if (typeof forMs === 'string') return forMs;
      return { kind, channel, threshold: c.threshold, ...(hysteresis !== undefined ? { hysteresis } : {}), ...(forMs !== undefined ? { forMs } : {}) };
    }
    case 'outside': {
      if (!finite(c.min) || !finite(c.max) || c.min > c.max) return 'an outside condition needs min ≤ max, both numbers';
      const hysteresis = hysteresisOf(c.hysteresis);
      const forMs = forMsOf(c.forMs);
      if (typeof hysteresis === 'string') return hysteresis;
      if (typeof forMs === 'string') return forMs;
      if (hysteresis !== undefined && 2 * hysteresis > c.max - c.min) return 'an outside condition\'s hysteresis must be at most half of max - min';
      return { kind, channel, min: c.min, max: c.max, ...(hysteresis !== undefined ? { hysteresis } : {}), ...(forMs !== undefined ? { forMs } : {}) };
    }
    default:
      return `condition.kind must be one of ${KINDS.join(', ')}`;
  }
}

/**
 * What is wrong with a condition for the channels of the type it watches, or undefined: a channel
 * the type does not have, `true` on a number channel, or a number test on a bool channel would
 * never fire (or fire on every non-zero reading), so a typo must not pass silently.
 */
export function channelProblem(c: AlarmCondition, type: string, channels: readonly ChannelSpec[]): string | undefined {
  if (c.kind === 'silent') return undefined;
  const ch = channels.find((x) => x.id === c.channel);
  if (ch === undefined) {
    return `condition.channel ${c.channel} is not a channel of type ${type} (its channels: ${channels.map((x) => `${x.id} ${x.name}`).join(', ') || 'none'})`;
  }
  if (c.kind === 'true' && ch.type !== 'bool') return `a true condition needs a bool channel; channel ${ch.id} (${ch.name}) of type ${type} is ${ch.type}: use above, below or outside`;
  if (c.kind !== 'true' && ch.type === 'bool') return `${c.kind === 'rate' ? 'a' : 'an'} ${c.kind} condition needs a number channel; channel ${ch.id} (${ch.name}) of type ${type} is bool: use kind true`;
  return undefined;
}

/** "temperature 9.2 °C above 8 for 5 min": the alarm's human line. */
export function describe(rule: AlarmRule, value: number | boolean | null, channelName?: string, unit = ''): string {
  const c = rule.condition;
  const what = channelName ?? ('channel' in c ? `channel ${c.channel}` : 'device');
  const v = typeof value === 'number' ? `${round(value)}${unit ? ` ${unit}` : ''}` : String(value);
  const dur = 'forMs' in c && c.forMs ? ` for ${duration(c.forMs)}` : '';
  switch (c.kind) {
    case 'above':
      return `${what} ${v} above ${c.threshold}${dur}`;
    case 'below':
      return `${what} ${v} below ${c.threshold}${dur}`;
    case 'outside':
      return `${what} ${v} outside [${c.min}, ${c.max}]${dur}`;
    case 'rate':
      return `${what} ${v}: changing faster than ${c.perSecond}/s`;
    case 'true':
      return `${what} is true`;
    case 'silent':
      return `no data for ${duration(c.forMs)}`;
  }
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function duration(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
