/**
 * One-time login codes: what the printed dashboard link carries instead of the operator token.
 * A code is signed (any process holding the token can check it), expires after LOGIN_CODE_TTL_MS,
 * and is spent by its first use: the spent ones are remembered until they would have expired.
 */
import { randomBytes } from 'node:crypto';
import type { Signer } from './signing.js';
import { localLoginSync, type LoginSync } from './sync.js';

export const LOGIN_CODE_TTL_MS = 120_000;

export type CodeRefusal = 'LOGIN_CODE_INVALID' | 'LOGIN_CODE_EXPIRED' | 'LOGIN_CODE_USED' | 'LOGIN_BUSY' | 'LOGIN_UNAVAILABLE';

export const CODE_REFUSALS: Record<CodeRefusal, { status: number; message: string }> = {
  LOGIN_CODE_INVALID: { status: 401, message: 'this login code is not one this gateway issued (mistyped, or from a gateway with another operator token)' },
  LOGIN_CODE_EXPIRED: { status: 401, message: 'this login code has expired (codes last 2 minutes): get a new link' },
  LOGIN_CODE_USED: { status: 401, message: 'this login code was already used (each works once): get a new link' },
  LOGIN_BUSY: { status: 429, message: 'too many logins in the last 2 minutes: try again shortly' },
  LOGIN_UNAVAILABLE: { status: 503, message: 'the gateway could not check the login code with its other workers: try again' },
};

const REFUSAL_OF = { used: 'LOGIN_CODE_USED', busy: 'LOGIN_BUSY', unavailable: 'LOGIN_UNAVAILABLE' } as const;

export class LoginCodes {
  constructor(
    private readonly signer: Signer,
    private readonly sync: LoginSync = localLoginSync(),
    private readonly ttlMs = LOGIN_CODE_TTL_MS,
  ) {}

  issue(now = Date.now()): { code: string; expiresAt: number } {
    const expiresAt = now + this.ttlMs;
    return { code: this.signer.sign('code', [expiresAt.toString(36), randomBytes(12).toString('base64url')]), expiresAt };
  }

  /** Spends a code: ok once, then LOGIN_CODE_USED (in every worker of this gateway). */
  async redeem(code: string, now = Date.now()): Promise<{ ok: true } | { ok: false; refusal: CodeRefusal }> {
    const fields = code.length <= 200 ? this.signer.verify('code', code, 2) : undefined;
    if (!fields) return { ok: false, refusal: 'LOGIN_CODE_INVALID' };
    const expiresAt = parseInt(fields[0]!, 36);
    if (!(expiresAt > now)) return { ok: false, refusal: 'LOGIN_CODE_EXPIRED' };
    const spent = await this.sync.spend(fields[1]!, expiresAt);
    return spent === 'ok' ? { ok: true } : { ok: false, refusal: REFUSAL_OF[spent] };
  }
}
