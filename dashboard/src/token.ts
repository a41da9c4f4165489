/**
 * The operator token: taken once from `?token=` (the URL the gateway prints at start), kept in
 * sessionStorage for this tab, and removed from the address bar so it stays out of the history,
 * bookmarks, server logs and Referer headers.
 */
const KEY = 'gateway.operatorToken';

let current: string | undefined;

/** Reads `?token=` (and drops it from the address bar), else the token kept for this tab. */
export function captureToken(): string | undefined {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    url.searchParams.delete('token');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    if (fromUrl !== '') store(fromUrl);
  }
  current = fromUrl || readStored();
  return current;
}

export function operatorToken(): string | undefined {
  return current;
}

/** Replaces the token (the auth page's "use this token" form). */
export function setToken(token: string): void {
  current = token;
  store(token);
}

/** Forgets a token the gateway refused. */
export function forgetToken(): void {
  current = undefined;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: nothing kept
  }
}

function store(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // storage disabled: the token lives in memory for this page only
  }
}

function readStored(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}
