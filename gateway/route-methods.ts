/**
 * The methods each HTTP route takes: the one list a 405's `Allow` header comes from (RFC 9110
 * §15.5.6 requires it). Handlers dispatch on the method themselves and throw methodNotAllowed()
 * for any other; test/integration/http-methods.test.ts checks every route's answers against this.
 */
import { ApiError } from './errors.js';
import type { RequestInfo } from './uws.js';

const READ = ['GET', 'HEAD'];

/** Paths by segment, `*` standing for one segment (an id). One route can be served by several handlers. */
const ROUTE_METHODS: readonly [path: string, methods: readonly string[]][] = [
  ['healthz', READ],
  ['readyz', READ],
  ['metrics', READ],
  ['api/devices', [...READ, 'POST']],
  ['api/devices/*', [...READ, 'PATCH', 'DELETE']],
  ['api/devices/*/history', READ],
  ['api/devices/*/telemetry', ['POST']],
  ['api/devices/*/commands', [...READ, 'POST']],
  ['api/devices/*/token', ['POST']],
  ['api/devices/*/disable', ['POST']],
  ['api/devices/*/enable', ['POST']],
  ['api/commands/*', READ],
  ['api/alarms', READ],
  ['api/alarms/*', READ],
  ['api/alarms/*/acknowledge', ['POST']],
  ['api/alarms/*/clear', ['POST']],
  ['api/alarm-rules', [...READ, 'POST']],
  ['api/alarm-rules/*', [...READ, 'DELETE']],
  ['api/live', READ],
  ['api/device-types', READ],
  ['api/session', [...READ, 'POST', 'DELETE']],
  ['api/login-codes', ['POST']],
];
const ROUTES = ROUTE_METHODS.map(([path, methods]) => ({ segments: path.split('/'), allow: methods.join(', ') }));

/** The Allow header's value for a path (its segments), or undefined when no route has it. */
export function allowedMethods(segments: readonly string[]): string | undefined {
  for (const r of ROUTES) {
    if (r.segments.length === segments.length && r.segments.every((s, i) => s === '*' || s === segments[i])) return r.allow;
  }
  return undefined;
}

/** A 405 that carries its route's `Allow` header (http-api.ts sendError writes it). */
export class MethodNotAllowed extends ApiError {
  override name = 'MethodNotAllowed';
  constructor(
    readonly allow: string,
    message: string,
  ) {
    super(405, 'METHOD_NOT_ALLOWED', message);
  }
}

/** The 405 for a request whose route does not take its method; `hint` says what each method does. */
export function methodNotAllowed(req: RequestInfo, segments: readonly string[], hint = ''): MethodNotAllowed {
  // A handler that refuses a path missing from the table is a bug of the table: GET and HEAD is the safe guess.
  const allow = allowedMethods(segments) ?? READ.join(', ');
  return new MethodNotAllowed(allow, `${req.method} is not allowed on ${req.path}: it takes ${allow}${hint ? ` (${hint})` : ''}`);
}
