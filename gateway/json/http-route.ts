/**
 * `POST /api/devices/{id}/telemetry` with the device's token as Bearer: JSON telemetry over HTTP
 * (README "JSON telemetry"). Runs before the operator check. 202 `{accepted, duplicates}` only once
 * the readings are as safe as an ack makes them; every refusal is a row of session/refusals.ts,
 * answered `{error: {code, message}}` with its status, counted and logged as a device's refusal.
 */
import type { JsonTelemetryAnswer } from '../../devices/api/json.js';
import { bearerToken } from '../auth.js';
import { sendJson, type RouteHandler } from '../http-api.js';
import { methodNotAllowed } from '../route-methods.js';
import { Refusal } from '../session/refusals.js';
import type { DeviceSessions, Peer } from '../session/sessions.js';
import type { Reply } from '../uws.js';
import type { DeviceRate } from './rate.js';
import type { JsonTelemetry } from './telemetry.js';

export interface JsonRouteDeps {
  sessions: DeviceSessions;
  json: JsonTelemetry;
  rate: DeviceRate;
  /** Largest body (--max-frame-bytes). */
  maxBytes: number;
}

const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

function answer(reply: Reply, r: Refusal, extra: { accepted?: number; retryAfterS?: number } = {}): void {
  const headers: Record<string, string> = { ...HEADERS };
  const status = r.postStatus;
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="device"';
  if (extra.retryAfterS !== undefined) headers['retry-after'] = String(extra.retryAfterS);
  else if (status === 503) headers['retry-after'] = '1';
  const body = { error: { code: r.code, message: r.message }, ...(extra.accepted ? { accepted: extra.accepted } : {}) };
  reply.send(status, headers, JSON.stringify(body));
}

export function jsonTelemetryRoute(d: JsonRouteDeps): RouteHandler {
  return async (req, reply, seg) => {
    if (seg.length !== 4 || seg[0] !== 'api' || seg[1] !== 'devices' || seg[3] !== 'telemetry') return false;
    if (req.method !== 'POST') throw methodNotAllowed(req, seg, "POST JSON telemetry with the device's token");
    const peer: Peer = { transport: 'http', device: seg[2]!, remote: req.remoteAddress };
    const device = d.sessions.identify({ transport: 'http', id: seg[2]!, remote: req.remoteAddress, token: bearerToken(req.header('authorization'), req.query) });
    if (device instanceof Refusal) {
      answer(reply, device);
      return true;
    }
    const waitMs = d.rate.take(device, Date.now());
    if (waitMs > 0) {
      const r = d.sessions.refuseRequest(device, 'RATE_LIMITED', `more than --http-telemetry-rate requests per second from this device: retry in ${waitMs} ms`, peer);
      answer(reply, r, { retryAfterS: Math.ceil(waitMs / 1000) });
      return true;
    }
    const body = await reply.readBody(d.maxBytes);
    const now = Date.now();
    if (body === undefined) {
      answer(reply, d.sessions.refuseRequest(device, 'FRAME_TOO_LARGE', `the body is over ${d.maxBytes} bytes (--max-frame-bytes): split it`, peer));
      return true;
    }
    const t = d.json.take(device, body, now, 'http');
    if ('refusal' in t) {
      // Ingest counted it against the device and the gateway already.
      const r = new Refusal(t.refusal.code, t.refusal.message);
      d.sessions.record(r, peer);
      answer(reply, r, { accepted: t.accepted });
      return true;
    }
    if (await t.safe) sendJson(reply, 202, { accepted: t.accepted, duplicates: t.duplicates } satisfies JsonTelemetryAnswer);
    else {
      const r = d.sessions.refuseRequest(device, 'ACK_TIMEOUT', 'the readings were taken but not confirmed stored within 20 s (storage slow, the cursor file failing, or an earlier seq of this epoch missing): resend; with seq the resend is a duplicate', peer);
      answer(reply, r, { accepted: t.accepted + t.duplicates });
    }
    return true;
  };
}
