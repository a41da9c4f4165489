/**
 * Logging in (README "Operator login"). The link the gateway prints carries a one-time code in the
 * fragment (`/#code=…`); an old-style link carries the operator token (`/?token=…`). Either is taken
 * out of the address bar at once and exchanged for the gateway's session cookie (HttpOnly: this
 * page never sees it). Nothing is kept in the page's storage, and no later URL carries a secret.
 */
import { ApiError, checkSession, createSession } from './api.js';

/** Where tokens were kept by earlier versions of this page: cleared on start. */
const OLD_STORAGE_KEY = 'gateway.operatorToken';

export type LoginOutcome = { ok: true } | { ok: false; problem: 'missing' | 'ended' | 'refused'; detail?: string };

/** Removes a login code or token from the address bar and returns it. */
function takeCredential(): { code?: string; token?: string } {
  const url = new URL(window.location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const code = url.hash.startsWith('#code=') ? (fragment.get('code') ?? '') : undefined;
  const token = url.searchParams.get('token') ?? undefined;
  if (code === undefined && token === undefined) return {};
  url.searchParams.delete('token');
  window.history.replaceState(null, '', url.pathname + url.search + (code === undefined ? url.hash : ''));
  return { code, token };
}

function forgetOldStorage(): void {
  try {
    sessionStorage.removeItem(OLD_STORAGE_KEY);
    localStorage.removeItem(OLD_STORAGE_KEY);
  } catch {
    // storage disabled: nothing was kept
  }
}

/** Logs in with what the URL brought, else checks the session the browser already has. */
export async function logIn(): Promise<LoginOutcome> {
  forgetOldStorage();
  const { code, token } = takeCredential();
  let linkRefused: ApiError | undefined;
  if (code !== undefined || token !== undefined) {
    try {
      await createSession(code !== undefined ? { code } : { token: token! });
    } catch (err) {
      if (!refusal(err)) throw err;
      // A spent link opened again in a browser that is still logged in: carry on.
      linkRefused = err;
    }
  }
  try {
    await checkSession();
    return { ok: true };
  } catch (err) {
    if (!refusal(err)) throw err;
    if (linkRefused) return { ok: false, problem: 'refused', detail: `${linkRefused.code}: ${linkRefused.message}` };
    return { ok: false, problem: err.code === 'SESSION_ENDED' ? 'ended' : 'missing' };
  }
}

function refusal(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status >= 400 && err.status < 500;
}

/** Logs in with a pasted operator token (the auth page's form). */
export async function logInWithToken(token: string): Promise<void> {
  await createSession({ token });
}
