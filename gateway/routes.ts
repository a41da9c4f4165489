/**
 * Every HTTP route in one place: the operator API (devices and their management, history, commands, alarms, live SSE, device
 * types), the probes, /metrics, and the dashboard files. The order matters: /api routes after the
 * operator check, public ones before, the dashboard last.
 */
import type { ApiErrorBody, DeviceTypeList } from '../devices/api/json.js';
import { deviceTypes } from '../devices/device-types.js';
import type { Alarms } from './alarms/alarms.js';
import { alarmRoutes } from './alarms/routes.js';
import type { CommandService } from './commands/commands.js';
import { commandRoutes } from './commands/routes.js';
import type { DeviceAdmin } from './registry/admin.js';
import { deviceAdminRoutes } from './registry/routes.js';
import type { DeviceTable } from './devices.js';
import { createApi, requireGet, sendJson, type ApiContext, type RouteHandler } from './http-api.js';
import type { SseHub } from './live/sse.js';
import type { OperatorAccess } from './login/access.js';
import type { LoginCodes } from './login/codes.js';
import { loginRoutes } from './login/routes.js';
import type { Registry } from 'prom-client';
import type { StaticFiles } from './static.js';
import type { Storage } from './storage/index.js';
import type { Reply, RequestInfo } from './uws.js';

export interface RouteContext {
  devices: DeviceTable;
  access: OperatorAccess;
  loginCodes: LoginCodes;
  storage: Storage;
  /** History from more than local storage (cluster on the memory store). */
  history?: ApiContext['history'];
  commands: CommandService;
  admin: DeviceAdmin;
  alarms: Alarms;
  commandMaxArgsBytes: number;
  /** POST /api/devices/{id}/telemetry (gateway/json/http-route.ts): devices' own token, before the operator check. */
  jsonTelemetry: RouteHandler;
  sse: SseHub;
  /** Where /metrics text comes from: the registry, or a sum over workers. */
  metrics: Pick<Registry, 'contentType' | 'metrics'>;
  dashboard: StaticFiles;
  ready(): { ready: boolean; checks: Record<string, string> };
  /** False once the gateway is closing: leftover keep-alive requests are refused. */
  running(): boolean;
}

const deviceTypesRoute: RouteHandler = (req, reply, seg) => {
  if (seg.length !== 2 || seg[0] !== 'api' || seg[1] !== 'device-types') return false;
  requireGet(req, seg);
  sendJson(reply, 200, { types: deviceTypes() } satisfies DeviceTypeList);
  return true;
};

function metricsRoute(registry: Pick<Registry, 'contentType' | 'metrics'>): RouteHandler {
  return async (req, reply, seg) => {
    if (seg.length !== 1 || seg[0] !== 'metrics') return false;
    requireGet(req, seg);
    reply.send(200, { 'content-type': registry.contentType }, await registry.metrics());
    return true;
  };
}

export function httpHandler(ctx: RouteContext): (req: RequestInfo, reply: Reply) => void {
  const api = createApi(
    { devices: ctx.devices, access: ctx.access, storage: ctx.storage, history: ctx.history, ready: ctx.ready },
    [
      commandRoutes(ctx.commands, ctx.commandMaxArgsBytes),
      deviceAdminRoutes(ctx.admin, ctx.devices),
      alarmRoutes(ctx.alarms),
      ctx.sse.route(),
      deviceTypesRoute,
      metricsRoute(ctx.metrics),
      (req, reply, seg) => seg[0] !== 'api' && ctx.dashboard.serve(req, reply),
    ],
    [loginRoutes(ctx.access, ctx.loginCodes), ctx.jsonTelemetry],
  );
  return (req, reply) => {
    // uWS cannot close an app's open keep-alive connections: after close(), refuse and hang up.
    if (!ctx.running()) {
      reply.sendAndClose(503, { 'content-type': 'application/json', connection: 'close' }, JSON.stringify({ error: { code: 'SHUTTING_DOWN', message: 'this gateway has stopped' } } satisfies ApiErrorBody));
      return;
    }
    api(req, reply);
  };
}
