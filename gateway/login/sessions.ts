/**
 * Operator sessions: what a browser holds after a login, as an HttpOnly, SameSite=Strict cookie.
 * The cookie is signed (id, login time, idle deadline), so any process holding the operator token
 * accepts it; using it renews the idle deadline (a new cookie at most once a minute); it ends at
 * the idle deadline, SESSION_MAX_MS after login, at logout, or when the operator token changes.
 * Logged-out ids are remembered until their cookies could no longer be valid anyway.
 */
import { randomBytes } from 'node:crypto';
import type { Signer } from './signing.js';
import { localLoginSync, type LoginSync } from './sync.js';

/** However often it is used, a session ends this long after its login. */
export const SESSION_MAX_MS = 7 * 24 * 3600_000;
/** A used session gets a new cookie (a later idle deadline) at most this often. */
const RENEW_AFTER_MS = 60_000;
/** Logged-out sessions remembered at most (each until its cookies are dead anyway); past it the oldest are forgotten. */
const MAX_REVOKED = 100_000;

export interface Session {
  id: string;
  /** Login time, ms since epoch. */
  since: number;
  /** Idle deadline carried by the cookie this request sent. */
  expiresAt: number;
}

export class Sessions {
  /** id → when its cookies are all dead anyway. */
  private readonly revoked = new Map<string, number>();
  private readonly revokeListeners: ((id: string) => void)[] = [];

  constructor(
    private readonly signer: Signer,
    readonly idleMs: number,
    private readonly sync: LoginSync = localLoginSync(),
  ) {
    sync.onLoggedOut((id, until) => {
      this.remember(id, until, Date.now());
      for (const l of this.revokeListeners) l(id);
    });
  }

  create(now = Date.now()): { session: Session; cookie: string } {
    const session = { id: randomBytes(16).toString('base64url'), since: now, expiresAt: Math.min(now + this.idleMs, now + SESSION_MAX_MS) };
    return { session, cookie: this.encode(session) };
  }

  /** The session a cookie value stands for, if it is still valid. */
  read(value: string, now = Date.now()): Session | undefined {
    const f = value.length <= 200 ? this.signer.verify('session', value, 3) : undefined;
    if (!f) return undefined;
    const session = { id: f[0]!, since: parseInt(f[1]!, 36), expiresAt: parseInt(f[2]!, 36) };
    if (!(session.expiresAt > now) || !(session.since + SESSION_MAX_MS > now) || this.revoked.has(session.id)) return undefined;
    return session;
  }

  /** A renewed cookie value for a session in use, when the last one is over a minute old. */
  renew(session: Session, now = Date.now()): string | undefined {
    const expiresAt = Math.min(now + this.idleMs, session.since + SESSION_MAX_MS);
    if (expiresAt - session.expiresAt < RENEW_AFTER_MS) return undefined;
    return this.encode({ ...session, expiresAt });
  }

  /** Logs a session out: its cookies stop working (in every worker), and listeners close what it holds open. */
  revoke(id: string, now = Date.now()): void {
    // Every cookie of this session dies by then, however it was renewed.
    const until = now + this.idleMs;
    this.remember(id, until, now);
    this.sync.loggedOut(id, until);
    for (const l of this.revokeListeners) l(id);
  }

  onRevoke(listener: (id: string) => void): void {
    this.revokeListeners.push(listener);
  }

  private remember(id: string, until: number, now: number): void {
    // Entries come in about the order they expire: the oldest first.
    for (const [k, t] of this.revoked) {
      if (t > now && this.revoked.size < MAX_REVOKED) break;
      this.revoked.delete(k);
    }
    this.revoked.set(id, until);
  }

  private encode(s: Session): string {
    return this.signer.sign('session', [s.id, s.since.toString(36), s.expiresAt.toString(36)]);
  }
}
