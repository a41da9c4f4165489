/** Login codes, session cookies and the origin rule, with the clock passed in (no waiting). */
import { describe, expect, it } from 'vitest';
import { LOGIN_CODE_TTL_MS, LoginCodes } from '../../gateway/login/codes.js';
import { originMatchesHost } from '../../gateway/login/origin.js';
import { SESSION_MAX_MS, Sessions } from '../../gateway/login/sessions.js';
import { Signer } from '../../gateway/login/signing.js';
import { SpentCodes } from '../../gateway/login/sync.js';

const T0 = 1_800_000_000_000;

describe('login codes', () => {
  it('work once, then say LOGIN_CODE_USED', async () => {
    const codes = new LoginCodes(new Signer('op-token'));
    const { code, expiresAt } = codes.issue(T0);
    expect(expiresAt).toBe(T0 + LOGIN_CODE_TTL_MS);
    expect(await codes.redeem(code, T0 + 1000)).toEqual({ ok: true });
    expect(await codes.redeem(code, T0 + 2000)).toEqual({ ok: false, refusal: 'LOGIN_CODE_USED' });
  });

  it('expire after 2 minutes', async () => {
    const codes = new LoginCodes(new Signer('op-token'));
    const { code } = codes.issue(T0);
    expect(await codes.redeem(code, T0 + LOGIN_CODE_TTL_MS)).toEqual({ ok: false, refusal: 'LOGIN_CODE_EXPIRED' });
    const fresh = codes.issue(T0).code;
    expect(await codes.redeem(fresh, T0 + LOGIN_CODE_TTL_MS - 1)).toEqual({ ok: true });
  });

  it('refuse codes of another operator token, altered codes, sessions and junk as LOGIN_CODE_INVALID', async () => {
    const codes = new LoginCodes(new Signer('op-token'));
    const other = new LoginCodes(new Signer('another-token')).issue(T0).code;
    const mine = codes.issue(T0).code;
    // A later expiry written into a real code: the MAC no longer matches.
    const [, nonce, mac] = mine.split('.');
    const stretched = `${(T0 + 3600_000).toString(36)}.${nonce}.${mac}`;
    const session = new Sessions(new Signer('op-token'), 60_000).create(T0).cookie;
    for (const bad of [other, stretched, session, '', 'x', 'a.b.c', mine + 'x', 'x'.repeat(500)]) {
      expect(await codes.redeem(bad, T0 + 1)).toEqual({ ok: false, refusal: 'LOGIN_CODE_INVALID' });
    }
    expect(await codes.redeem(mine, T0 + 1)).toEqual({ ok: true });
  });
});

describe('spent codes', () => {
  it('are bounded: past 10,000 unexpired, logins wait (LOGIN_BUSY) until some expire', () => {
    const spent = new SpentCodes();
    for (let i = 0; i < 10_000; i++) expect(spent.spend(`n${i}`, T0 + 1000 + i, T0)).toBe('ok');
    expect(spent.spend('one-more', T0 + 5000, T0)).toBe('busy');
    expect(spent.spend('n5', T0 + 5000, T0)).toBe('used');
    // Once the first ten have expired, their room is free again.
    expect(spent.spend('one-more', T0 + 50_000, T0 + 1010)).toBe('ok');
  });
});

describe('sessions', () => {
  const IDLE = 3600_000;

  it('are valid until the idle deadline, and renewal moves it (at most once a minute)', () => {
    const sessions = new Sessions(new Signer('op-token'), IDLE);
    const { cookie, session } = sessions.create(T0);
    expect(sessions.read(cookie, T0 + IDLE - 1)?.id).toBe(session.id);
    expect(sessions.read(cookie, T0 + IDLE)).toBeUndefined();
    expect(sessions.renew(session, T0 + 30_000)).toBeUndefined();
    const renewed = sessions.renew(session, T0 + IDLE - 10)!;
    expect(sessions.read(renewed, T0 + IDLE + 1000)?.id).toBe(session.id);
  });

  it('end SESSION_MAX_MS after login however often they are renewed', () => {
    const sessions = new Sessions(new Signer('op-token'), IDLE);
    let { cookie } = sessions.create(T0);
    for (let t = T0; t < T0 + SESSION_MAX_MS + IDLE; t += IDLE / 2) {
      const s = sessions.read(cookie, t);
      if (!s) {
        expect(t).toBeGreaterThanOrEqual(T0 + SESSION_MAX_MS);
        return;
      }
      cookie = sessions.renew(s, t) ?? cookie;
    }
    throw new Error('the session outlived SESSION_MAX_MS');
  });

  it('stop working at logout, renewed copies too, and tell listeners', () => {
    const sessions = new Sessions(new Signer('op-token'), IDLE);
    const { cookie, session } = sessions.create(T0);
    const renewed = sessions.renew(session, T0 + 120_000)!;
    const closed: string[] = [];
    sessions.onRevoke((id) => closed.push(id));
    sessions.revoke(session.id, T0 + 130_000);
    expect(closed).toEqual([session.id]);
    expect(sessions.read(cookie, T0 + 140_000)).toBeUndefined();
    expect(sessions.read(renewed, T0 + 140_000)).toBeUndefined();
    // Another session is not affected.
    const other = sessions.create(T0 + 150_000).cookie;
    expect(sessions.read(other, T0 + 160_000)).toBeDefined();
  });

  it('refuse cookies of another operator token, altered ones and login codes', () => {
    const sessions = new Sessions(new Signer('op-token'), IDLE);
    const foreign = new Sessions(new Signer('another-token'), IDLE).create(T0).cookie;
    const [id, since, , mac] = sessions.create(T0).cookie.split('.');
    const stretched = `${id}.${since}.${(T0 + 10 * IDLE).toString(36)}.${mac}`;
    const code = new LoginCodes(new Signer('op-token')).issue(T0).code;
    for (const bad of [foreign, stretched, code, '', 'a.b.c.d']) expect(sessions.read(bad, T0 + 1)).toBeUndefined();
  });
});

describe('the origin rule', () => {
  it('matches an Origin to the Host the request was sent to, scheme aside', () => {
    expect(originMatchesHost('http://127.0.0.1:8080', '127.0.0.1:8080')).toBe(true);
    expect(originMatchesHost('https://gw.example.com', 'gw.example.com')).toBe(true);
    expect(originMatchesHost('https://gw.example.com', 'gw.example.com:443')).toBe(true);
    expect(originMatchesHost('http://GW.example.com:8080', 'gw.example.com:8080')).toBe(true);
    expect(originMatchesHost('http://127.0.0.1:8081', '127.0.0.1:8080')).toBe(false);
    expect(originMatchesHost('http://evil.example', '127.0.0.1:8080')).toBe(false);
    expect(originMatchesHost('http://gw.example.com.evil.example', 'gw.example.com')).toBe(false);
    expect(originMatchesHost('null', '127.0.0.1:8080')).toBe(false);
    expect(originMatchesHost('', '127.0.0.1:8080')).toBe(false);
    expect(originMatchesHost('http://127.0.0.1:8080', '')).toBe(false);
  });
});
