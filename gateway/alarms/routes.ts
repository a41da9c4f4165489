/**
 * The alarm API (after the operator check): GET /api/alarms, GET /api/alarms/{id},
 * POST /api/alarms/{id}/acknowledge|clear, GET/POST /api/alarm-rules, DELETE /api/alarm-rules/{id}.
 */
import type { AlarmList, AlarmRuleList, AlarmSeverity, AlarmState } from '../../devices/api/json.js';
import { DEVICE_ID_PATTERN } from '../../devices/device-id.js';
import { ApiError } from '../errors.js';
import { FileWriteError } from '../files/file-error.js';
import { readJson, requireGet, sendJson, type RouteHandler } from '../http-api.js';
import { onlyParams } from '../query-params.js';
import { methodNotAllowed } from '../route-methods.js';
import { AlarmError, type AlarmErrorCode } from './alarm-error.js';
import type { AlarmQuery } from './alarm-book.js';
import type { Alarms } from './alarms.js';
import { AlarmRuleError, SEVERITIES } from './rule.js';

const STATUS: Record<AlarmErrorCode, number> = {
  ALARM_NOT_FOUND: 404,
  ALARM_RULE_NOT_FOUND: 404,
  ALARM_ALREADY_ACKNOWLEDGED: 409,
  ALARM_ALREADY_CLEARED: 409,
  ALARM_RULE_EXISTS: 409,
  ALARM_RULE_READ_ONLY: 409,
};
const STATES: readonly AlarmState[] = ['active', 'acknowledged', 'cleared'];
const MAX_LIMIT = 10_000;
const MAX_NOTE = 1000;

/**
 * Parses `state`, `severity`, `device`, `limit` (comma lists or repeated parameters). Another
 * parameter is a 400: a filter silently ignored would answer a question the caller did not ask.
 */
export function parseAlarmQuery(q: URLSearchParams): AlarmQuery {
  onlyParams(q, ['state', 'severity', 'device', 'limit'], 'GET /api/alarms takes state, severity, device and limit');
  const list = <T extends string>(name: string, allowed: readonly T[]): Set<T> | undefined => {
    const raw = q.getAll(name).flatMap((v) => v.split(',')).filter((v) => v !== '');
    if (raw.length === 0) return undefined;
    for (const v of raw) if (!allowed.includes(v as T)) throw new ApiError(400, 'BAD_QUERY', `${name} must be one or more of ${allowed.join(', ')} (comma-separated); got "${v.slice(0, 50)}"`);
    return new Set(raw as T[]);
  };
  const query: AlarmQuery = { limit: 100 };
  const states = list<AlarmState>('state', STATES);
  const severities = list<AlarmSeverity>('severity', SEVERITIES);
  if (states) query.states = states;
  if (severities) query.severities = severities;
  const device = q.get('device');
  if (device !== null && device !== '') {
    if (!DEVICE_ID_PATTERN.test(device)) throw new ApiError(400, 'BAD_QUERY', 'device must be a device id');
    query.device = device;
  }
  const limit = q.get('limit');
  if (limit !== null && limit !== '') {
    const n = /^\d+$/.test(limit) ? Number(limit) : NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LIMIT) throw new ApiError(400, 'BAD_QUERY', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
    query.limit = n;
  }
  return query;
}

/** The alarm services' refusals as HTTP answers. */
function answer<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof AlarmError) throw new ApiError(STATUS[err.code], err.code, err.message);
    if (err instanceof AlarmRuleError) throw new ApiError(400, err.code, err.message);
    if (err instanceof FileWriteError) {
      throw new ApiError(err.noSpace ? 507 : 503, what, `not done: ${err.message}. Retry once the data disk takes writes again (GET /readyz says when)`);
    }
    throw err;
  }
}

async function note(reply: Parameters<RouteHandler>[1]): Promise<string | undefined> {
  const raw = await reply.readBody(16 * 1024);
  if (raw === undefined) throw new ApiError(413, 'BODY_TOO_LARGE', 'the request body is over 16384 bytes');
  const text = raw.toString('utf8');
  // No body is "no note".
  if (text.trim() === '') return undefined;
  let body: { note?: unknown } | null;
  try {
    body = JSON.parse(text) as { note?: unknown } | null;
  } catch (err) {
    throw new ApiError(400, 'BAD_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'BAD_ALARM_ACTION', 'the body is a JSON object {"note": "…"} (note optional)');
  if (body.note === undefined) return undefined;
  if (typeof body.note !== 'string' || body.note.length > MAX_NOTE) throw new ApiError(400, 'BAD_ALARM_ACTION', `note must be a string of at most ${MAX_NOTE} characters`);
  return body.note;
}

export function alarmRoutes(alarms: Alarms): RouteHandler {
  return async (req, reply, s) => {
    if (s[0] !== 'api') return false;
    if (s[1] === 'alarms') {
      if (s.length === 2) {
        requireGet(req, s);
        sendJson(reply, 200, { alarms: alarms.list(parseAlarmQuery(req.query)) } satisfies AlarmList);
        return true;
      }
      if (s.length === 3) {
        requireGet(req, s);
        const a = alarms.get(s[2]!);
        if (!a) throw new ApiError(404, 'ALARM_NOT_FOUND', `no alarm "${s[2]}" (cleared alarms are kept only for the newest ones)`);
        sendJson(reply, 200, a);
        return true;
      }
      if (s.length === 4 && (s[3] === 'acknowledge' || s[3] === 'clear')) {
        if (req.method !== 'POST') throw methodNotAllowed(req, s);
        const n = await note(reply);
        const id = s[2]!;
        const a = answer('ALARM_NOT_PERSISTED', () => (s[3] === 'acknowledge' ? alarms.acknowledge(id, n) : alarms.clear(id, n)));
        sendJson(reply, 200, a);
        return true;
      }
      return false;
    }
    if (s[1] === 'alarm-rules') {
      if (s.length === 2) {
        if (req.method === 'POST') {
          const body = await readJson(reply, 64 * 1024);
          sendJson(reply, 201, answer('ALARM_RULE_NOT_PERSISTED', () => alarms.rules.add(body)));
          return true;
        }
        requireGet(req, s);
        sendJson(reply, 200, { rules: alarms.rules.all() } satisfies AlarmRuleList);
        return true;
      }
      if (s.length === 3) {
        if (req.method === 'DELETE') {
          sendJson(reply, 200, answer('ALARM_RULE_NOT_PERSISTED', () => alarms.rules.remove(s[2]!)));
          return true;
        }
        requireGet(req, s);
        const r = alarms.rules.get(s[2]!);
        if (!r) throw new ApiError(404, 'ALARM_RULE_NOT_FOUND', `no alarm rule "${s[2]}"`);
        sendJson(reply, 200, r);
        return true;
      }
    }
    return false;
  };
}
