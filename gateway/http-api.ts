/**
 * The operator's HTTP API under /api (operator token or login session required) and the
 * unauthenticated probes. Errors are `{ "error": { "code", "message" } }` with the matching status.
 */
import type { DeviceList, HealthAnswer, HistoryAnswer, HistoryBucket, ReadyAnswer } from '../devices/api/json.js';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../devices/device-id.js';
import { devicePage, parseDeviceListQuery } from './device-list-query.js';
import { ApiError } from './errors.js';
import type { DeviceTable } from './devices.js';
import type { OperatorAccess } from './login/access.js';
import { matchesLabels } from './registry/labels.js';
import { onlyParams } from './query-params.js';
import { methodNotAllowed, MethodNotAllowed } from './route-methods.js';
import type { HistoryQuery, Storage } from './storage/storage.js';
import type { Reply, RequestInfo } from './uws.js';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
const MAX_HISTORY_POINTS = 10_000;

export interface ApiContext {
  devices: DeviceTable;
  access: OperatorAccess;
  storage: Storage;
  /** Where history comes from when not from storage alone (a cluster on the memory store: cluster/remote-history.ts). */
  history?: { history(q: HistoryQuery): Promise<HistoryBucket[]> } | undefined;
  ready(): { ready: boolean; checks: Record<string, string> };
}

/** Extra routes other modules add, after the operator check for /api: resolve true when handled. Throw ApiError to answer an error. */
export type RouteHandler = (req: RequestInfo, reply: Reply, segments: string[]) => boolean | Promise<boolean>;

export function sendJson(reply: Reply, status: number, body: unknown): void {
  reply.send(status, JSON_HEADERS, JSON.stringify(body));
}

export function sendError(reply: Reply, err: ApiError): void {
  const headers: Record<string, string> = { ...JSON_HEADERS };
  if (err.status === 401) headers['www-authenticate'] = 'Bearer realm="operator"';
  if (err instanceof MethodNotAllowed) headers.allow = err.allow;
  reply.send(err.status, headers, JSON.stringify(err.toJSON()));
}

function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ApiError(400, 'BAD_QUERY', `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** An ISO 8601 date, or date and time with an optional zone (what Date.parse reads the same everywhere). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
/** The last ms a JavaScript Date (and so a history query) can hold. */
const MAX_TIME = 8.64e15;

/**
 * Parses a time parameter: ms since epoch or an ISO 8601 time. Only those: Date.parse alone also
 * takes "-5", "1.5" or "March 7" as some day in 2001, which would answer a typo with the wrong window.
 */
function timeParam(q: URLSearchParams, name: string, fallback: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : ISO_TIME.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(n) || n > MAX_TIME) {
    const plus = raw.includes(' ') ? ' (a "+" of a time zone must be sent as %2B)' : '';
    throw new ApiError(400, 'BAD_QUERY', `${name} must be ms since 1970 or an ISO 8601 time such as 2026-01-31T12:00:00Z, got "${raw.slice(0, 64)}"${plus}`);
  }
  return n;
}

/**
 * A path segment without its percent-encoding. One that is not valid encoding (`%ZZ`, a cut UTF-8
 * sequence) is taken as written: no route or id has a `%`, so it gets the route's own 400 or 404
 * (after the operator check) instead of an exception.
 */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `beforeAuth` routes (the login) run before the operator check; `extra` after it. */
export function createApi(ctx: ApiContext, extra: RouteHandler[] = [], beforeAuth: RouteHandler[] = []): (req: RequestInfo, reply: Reply) => void {
  return (req, reply) => {
    const segments = req.path.split('/').filter(Boolean).map(decodeSegment);
    route(req, reply, segments).catch((err: unknown) => {
      sendError(reply, err instanceof ApiError ? err : new ApiError(500, 'INTERNAL', `unexpected error: ${(err as Error)?.message ?? String(err)}`));
    });
  };

  async function route(req: RequestInfo, reply: Reply, s: string[]): Promise<void> {
    // The probes are read-only: GET and HEAD (a health check's usual methods), any other 405.
    if (s.length === 1 && s[0] === 'healthz') {
      requireGet(req, s);
      // Which process answered: with --workers, each connection may reach another one.
      return sendJson(reply, 200, { status: 'ok', pid: process.pid, instance: ctx.devices.instance } satisfies HealthAnswer);
    }
    if (s.length === 1 && s[0] === 'readyz') {
      requireGet(req, s);
      const r = ctx.ready();
      return sendJson(reply, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks } satisfies ReadyAnswer);
    }
    if (s[0] === 'api') {
      for (const h of beforeAuth) if (await h(req, reply, s)) return;
      ctx.access.request(req, reply);
      // Other methods on /api/devices[/{id}] are the management API's (registry/routes.ts).
      if (s[1] === 'devices' && (s.length <= 3 || s[3] === 'history') && (req.method === 'GET' || req.method === 'HEAD' || s.length === 4)) return devicesRoute(req, reply, s);
    }
    for (const h of extra) if (await h(req, reply, s)) return;
    throw new ApiError(404, 'NOT_FOUND', `no route for ${req.method} ${req.path}`);
  }

  async function devicesRoute(req: RequestInfo, reply: Reply, s: string[]): Promise<void> {
    if (s.length === 2) {
      requireGet(req, s);
      const query = parseDeviceListQuery(req.query);
      const list = [];
      for (const d of ctx.devices.all()) {
        if (query.online !== undefined && d.online !== query.online) continue;
        if (query.labels.length > 0 && !matchesLabels(d.entry?.labels, query.labels)) continue;
        list.push(d.toJSON(ctx.devices.instance));
      }
      list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return sendJson(reply, 200, devicePage(list, query) satisfies DeviceList);
    }
    if (!DEVICE_ID_PATTERN.test(s[2]!)) throw new ApiError(400, 'BAD_DEVICE_ID', `"${s[2]}" is not a device id: ids are ${DEVICE_ID_RULE}`);
    const device = ctx.devices.get(s[2]!);
    if (s.length === 3) {
      requireGet(req, s);
      if (!device) throw new ApiError(404, 'DEVICE_NOT_FOUND', `no device "${s[2]}" (it is neither in the registry nor has it connected)`);
      return sendJson(reply, 200, device.toJSON(ctx.devices.instance));
    }
    if (s.length === 4 && s[3] === 'history') {
      requireGet(req, s);
      if (!device) throw new ApiError(404, 'DEVICE_NOT_FOUND', `no device "${s[2]}"`);
      onlyParams(req.query, ['channel', 'from', 'to', 'points'], `${req.path} takes channel, from, to, points`);
      const q = req.query;
      if (!q.has('channel')) throw new ApiError(400, 'BAD_QUERY', 'channel is required (0..255); GET /api/devices/{id} lists channels under "last"');
      const channel = intParam(q, 'channel', 0, 0, 255);
      const to = timeParam(q, 'to', Date.now());
      const from = timeParam(q, 'from', to - 3600_000);
      if (from > to) throw new ApiError(400, 'BAD_QUERY', 'from must not be after to');
      const points = intParam(q, 'points', 500, 1, MAX_HISTORY_POINTS);
      let buckets;
      try {
        buckets = await (ctx.history ?? ctx.storage).history({ device: device.id, channel, from, to, points });
      } catch (err) {
        if (err instanceof ApiError) throw err;
        const e = err as { code?: string; retryable?: boolean; message?: string };
        throw new ApiError(e.retryable ? 503 : 500, e.code ?? 'STORAGE_ERROR', `history could not be read: ${e.message ?? String(err)}`);
      }
      return sendJson(reply, 200, { device: device.id, channel, from, to, points: buckets } satisfies HistoryAnswer);
    }
    throw new ApiError(404, 'NOT_FOUND', `no route for ${req.method} ${req.path}`);
  }
}

/** Refuses bytes that are not UTF-8 instead of storing U+FFFD in their place. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads a JSON request body of at most maxBytes. */
export async function readJson(reply: Reply, maxBytes: number): Promise<unknown> {
  const body = await reply.readBody(maxBytes);
  if (body === undefined) throw new ApiError(413, 'BODY_TOO_LARGE', `the request body is over ${maxBytes} bytes`);
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new ApiError(400, 'BAD_JSON', 'the request body is not UTF-8: JSON must be sent as UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'BAD_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Refuses a method other than GET and HEAD with the route's 405 (its Allow from route-methods.ts). */
export function requireGet(req: RequestInfo, segments: readonly string[]): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req, segments);
}
