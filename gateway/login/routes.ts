/**
 * The login routes (README "Operator login"):
 *   POST   /api/session       { "code" } or Authorization: Bearer <token> → session cookie
 *   GET    /api/session       who is logged in (renews the cookie)
 *   DELETE /api/session       log out
 *   POST   /api/login-codes   a new one-time login link (operator token only)
 * They run before the general /api operator check: a login has no session yet.
 */
import type { LoginCodeAnswer, LogoutAnswer, SessionAnswer, SessionCreated } from '../../devices/api/json.js';
import { bearerToken } from '../auth.js';
import { ApiError } from '../errors.js';
import { readJson, sendJson, type RouteHandler } from '../http-api.js';
import { methodNotAllowed } from '../route-methods.js';
import type { RequestInfo } from '../uws.js';
import type { OperatorAccess } from './access.js';
import { CODE_REFUSALS, type LoginCodes } from './codes.js';
import { readCookie, cookieName, sessionCookie } from './cookie.js';
import { CROSS_ORIGIN_MESSAGE, originMatchesHost, sameOrigin } from './origin.js';
import { SESSION_MAX_MS } from './sessions.js';

/** The dashboard link for a code: a fragment never reaches the server, proxies' logs or a Referer. */
export function loginLink(base: string, code: string): string {
  return `${base.replace(/\/$/, '')}/#code=${code}`;
}

function baseUrl(req: RequestInfo): string {
  return `${req.secure ? 'https' : 'http'}://${req.header('host') || 'localhost'}`;
}

export function loginRoutes(access: OperatorAccess, codes: LoginCodes): RouteHandler {
  const sessions = access.sessions;
  return async (req, reply, s) => {
    if (s[0] !== 'api') return false;
    if (s.length === 2 && s[1] === 'session') {
      if (req.method === 'POST') {
        // A foreign page must not log a browser into a session of its choosing.
        const origin = req.header('origin');
        if (origin && !originMatchesHost(origin, req.header('host'))) throw new ApiError(403, 'CROSS_ORIGIN', CROSS_ORIGIN_MESSAGE);
        const token = bearerToken(req.header('authorization'), req.query);
        if (token) {
          access.request(req, reply); // 401 for a wrong token
        } else {
          const body = (await readJson(reply, 1024)) as { code?: unknown } | null;
          if (typeof body?.code !== 'string' || body.code === '') {
            throw new ApiError(400, 'BAD_LOGIN', 'send {"code":"<login code>"} or Authorization: Bearer <operator token>');
          }
          const r = await codes.redeem(body.code);
          if (!r.ok) throw new ApiError(CODE_REFUSALS[r.refusal].status, r.refusal, CODE_REFUSALS[r.refusal].message);
        }
        const { session, cookie } = sessions.create();
        reply.setHeader('set-cookie', sessionCookie(req, cookie, sessions.idleMs / 1000));
        sendJson(reply, 201, { session: { since: session.since, expiresAt: session.expiresAt, idleSeconds: sessions.idleMs / 1000, maxSeconds: SESSION_MAX_MS / 1000 } } satisfies SessionCreated);
        return true;
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        const who = access.request(req, reply);
        sendJson(reply, 200, who.via === 'session' ? ({ via: 'session', since: who.session.since, idleSeconds: sessions.idleMs / 1000 } satisfies SessionAnswer) : ({ via: 'token' } satisfies SessionAnswer));
        return true;
      }
      if (req.method === 'DELETE') {
        const hasCookie = readCookie(req, cookieName(req)) !== '';
        if (hasCookie && !sameOrigin(req)) throw new ApiError(403, 'CROSS_ORIGIN', CROSS_ORIGIN_MESSAGE);
        const session = access.session(req);
        if (session) sessions.revoke(session.id);
        reply.setHeader('set-cookie', sessionCookie(req, '', 0));
        sendJson(reply, 200, { loggedOut: session !== undefined } satisfies LogoutAnswer);
        return true;
      }
      throw methodNotAllowed(req, s, 'POST logs in, GET says who is logged in, DELETE logs out');
    }
    if (s.length === 2 && s[1] === 'login-codes') {
      if (req.method !== 'POST') throw methodNotAllowed(req, s, 'POST makes a login code');
      // Only the token makes codes: a session must not extend itself past its own end.
      if (access.request(req, reply).via !== 'token') throw new ApiError(403, 'TOKEN_REQUIRED', 'login codes are made with the operator token (Authorization: Bearer), not with a dashboard session');
      const { code, expiresAt } = codes.issue();
      sendJson(reply, 201, { code, url: loginLink(baseUrl(req), code), expiresAt } satisfies LoginCodeAnswer);
      return true;
    }
    return false;
  };
}
