/**
 * Who is asking, for the operator API and /live: a script with the operator token
 * (`Authorization: Bearer`, or `?token=`), or a browser with a session cookie. A cookie-borne
 * request that changes state, and every cookie-borne /live upgrade, must come from the gateway's
 * own origin; bearer-token requests are not affected (a browser never adds that header by itself).
 */
import { bearerToken, type Authenticator } from '../auth.js';
import { ApiError } from '../errors.js';
import type { Reply, RequestInfo } from '../uws.js';
import { cookieName, readCookie, sessionCookie } from './cookie.js';
import { CROSS_ORIGIN_MESSAGE, sameOrigin } from './origin.js';
import type { Session, Sessions } from './sessions.js';

export type Operator = { via: 'token' } | { via: 'session'; session: Session };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class OperatorAccess {
  constructor(
    private readonly auth: Authenticator,
    readonly sessions: Sessions,
  ) {}

  /** The operator behind an /api request; renews a session's cookie on the reply. Throws ApiError 401 or 403. */
  request(req: RequestInfo, reply: Reply): Operator {
    const who = this.identify(req);
    if (who.via === 'session') {
      if (!SAFE_METHODS.has(req.method) && !sameOrigin(req)) throw new ApiError(403, 'CROSS_ORIGIN', CROSS_ORIGIN_MESSAGE);
      const renewed = this.sessions.renew(who.session);
      if (renewed) reply.setHeader('set-cookie', sessionCookie(req, renewed, this.sessions.idleMs / 1000));
    }
    return who;
  }

  /** The operator behind a /live upgrade, or the refusal to answer with. */
  upgrade(req: RequestInfo): { ok: Operator } | { refuse: ApiError } {
    try {
      const who = this.identify(req);
      if (who.via === 'session' && !sameOrigin(req)) return { refuse: new ApiError(403, 'CROSS_ORIGIN', CROSS_ORIGIN_MESSAGE) };
      return { ok: who };
    } catch (err) {
      return { refuse: err as ApiError };
    }
  }

  /** A valid session cookie on the request, if any (no origin rule applied). */
  session(req: RequestInfo): Session | undefined {
    const value = readCookie(req, cookieName(req));
    return value ? this.sessions.read(value) : undefined;
  }

  private identify(req: RequestInfo): Operator {
    const token = bearerToken(req.header('authorization'), req.query);
    if (token) {
      if (this.auth.operator(token)) return { via: 'token' };
      throw new ApiError(401, 'UNAUTHORIZED', 'the operator token is wrong: send Authorization: Bearer <token> or ?token=');
    }
    const value = readCookie(req, cookieName(req));
    if (value) {
      const session = this.sessions.read(value);
      if (session) return { via: 'session', session };
      throw new ApiError(401, 'SESSION_ENDED', 'the login session has ended (idle too long, logged out, or the operator token changed): open a new login link (README "Operator login")');
    }
    throw new ApiError(401, 'UNAUTHORIZED', 'not logged in: open the login link the gateway printed, or send Authorization: Bearer <operator token> (or ?token=)');
  }
}
