/**
 * The management API (operator token; cookie sessions only from the gateway's own origin):
 *   POST   /api/devices                      {id, type?, name?, labels?} → 201 DeviceTokenAnswer
 *   PATCH  /api/devices/{id}                 {type?, name?, labels?}     → 200 DeviceSummary
 *   POST   /api/devices/{id}/token           {graceSeconds?}             → 200 DeviceTokenAnswer
 *   POST   /api/devices/{id}/disable | enable                           → 200 DeviceSummary
 *   DELETE /api/devices/{id}[?history=true]                              → 200 DeviceDeleted
 */
import type { DeviceDeleted, DevicePatch, DeviceSummary, DeviceTokenAnswer, NewDeviceRequest, TokenRotation } from '../../devices/api/json.js';
import type { DeviceTable } from '../devices.js';
import { ApiError } from '../errors.js';
import { FileWriteError } from '../files/file-error.js';
import { readJson, sendJson, type RouteHandler } from '../http-api.js';
import { methodNotAllowed } from '../route-methods.js';
import type { Reply, RequestInfo } from '../uws.js';
import { AdminError, type AdminAction, type AdminErrorCode, type DeviceAdmin } from './admin.js';
import type { RegistryEntry } from '../auth.js';

const MAX_BODY_BYTES = 16 * 1024;

const STATUS: Record<AdminErrorCode, number> = {
  BAD_DEVICE_ID: 400,
  BAD_DEVICE: 400,
  BAD_LABELS: 400,
  UNKNOWN_DEVICE_TYPE: 400,
  DEVICE_EXISTS: 409,
  DEVICE_NOT_FOUND: 404,
};

export function deviceAdminRoutes(admin: DeviceAdmin, devices: DeviceTable): RouteHandler {
  const summary = (id: string): DeviceSummary => devices.get(id)!.toJSON(devices.instance);
  const tokenAnswer = (entry: RegistryEntry, token: string): DeviceTokenAnswer => ({
    device: summary(entry.id),
    token,
    previousTokenValidUntil: entry.previousTokenHash !== undefined ? entry.previousUntil ?? null : null,
  });

  return async (req, reply, s) => {
    if (s[0] !== 'api' || s[1] !== 'devices') return false;
    const m = req.method;
    if (s.length === 2 && m === 'POST') {
      const body = (await readJson(reply, MAX_BODY_BYTES)) as NewDeviceRequest;
      return answer('add', () => {
        const { entry, token } = admin.add(body);
        sendJson(reply, 201, tokenAnswer(entry, token));
      });
    }
    if (s.length === 3 && m === 'PATCH') {
      const body = (await readJson(reply, MAX_BODY_BYTES)) as DevicePatch;
      return answer('update', () => sendJson(reply, 200, summary(admin.update(s[2]!, body).id)));
    }
    if (s.length === 3 && m === 'DELETE') {
      const history = flag(req, 'history');
      return answer('delete', async () => {
        await admin.remove(s[2]!, history);
        sendJson(reply, 200, { id: s[2]!, deleted: true, history } satisfies DeviceDeleted);
      });
    }
    if (s.length === 4 && (s[3] === 'token' || s[3] === 'disable' || s[3] === 'enable')) {
      if (m !== 'POST') throw methodNotAllowed(req, s);
      if (s[3] === 'token') {
        const body = (await readOptionalJson(reply)) as TokenRotation;
        return answer('rotate', () => {
          for (const k of Object.keys(body)) if (k !== 'graceSeconds') throw new AdminError('BAD_DEVICE', `unknown field "${k.slice(0, 64)}": the body takes graceSeconds`);
          const { entry, token } = admin.rotate(s[2]!, body.graceSeconds);
          sendJson(reply, 200, tokenAnswer(entry, token));
        });
      }
      const action = s[3];
      return answer(action, () => sendJson(reply, 200, summary((action === 'disable' ? admin.disable(s[2]!) : admin.enable(s[2]!)).id)));
    }
    if (s.length <= 3) throw methodNotAllowed(req, s);
    return false;
  };

  /** Runs one action: its refusals as HTTP errors, and its outcome counted. */
  async function answer(action: AdminAction, run: () => void | Promise<void>): Promise<true> {
    try {
      await run();
      admin.count(action, 'ok');
      return true;
    } catch (err) {
      if (err instanceof AdminError) {
        admin.count(action, err.code);
        throw new ApiError(STATUS[err.code], err.code, err.message);
      }
      if (err instanceof FileWriteError) {
        admin.count(action, 'REGISTRY_NOT_PERSISTED');
        throw new ApiError(
          err.noSpace ? 507 : 503,
          'REGISTRY_NOT_PERSISTED',
          `nothing was changed: ${err.message}. Retry once the data disk takes writes again (GET /readyz says when)`,
        );
      }
      const e = err as { code?: string; retryable?: boolean; message?: string };
      admin.count(action, e.code ?? 'INTERNAL');
      if (action === 'delete' && e.code?.startsWith('STORAGE_')) {
        throw new ApiError(e.retryable ? 503 : 500, 'HISTORY_NOT_DELETED', `the device is deleted but its history is not (${e.message}): repeat the DELETE with ?history=true`);
      }
      throw err;
    }
  }
}

function flag(req: RequestInfo, name: string): boolean {
  for (const k of req.query.keys()) if (k !== name && k !== 'token') throw new ApiError(400, 'BAD_QUERY', `unknown parameter "${k}": DELETE /api/devices/{id} takes history=true|false`);
  const v = req.query.get(name);
  if (v === null || v === 'false') return false;
  if (v === 'true') return true;
  throw new ApiError(400, 'BAD_QUERY', `${name} must be true or false, got "${v.slice(0, 40)}"`);
}

/** An optional JSON object body (an empty body reads as {}). */
async function readOptionalJson(reply: Reply): Promise<Record<string, unknown>> {
  const body = await reply.readBody(MAX_BODY_BYTES);
  if (body === undefined) throw new ApiError(413, 'BODY_TOO_LARGE', `the request body is over ${MAX_BODY_BYTES} bytes`);
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, 'BAD_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'BAD_DEVICE', 'the body must be a JSON object');
  return v as Record<string, unknown>;
}
