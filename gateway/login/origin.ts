/**
 * Same-origin rules for requests that a browser authenticates by itself (the session cookie): a
 * WebSocket to /live (cross-site WebSocket hijacking: SameSite does not cover every case, e.g. a
 * sibling subdomain) and anything that changes state. The gateway's own origin is the Host the
 * request was sent to; schemes are not compared, as a TLS-terminating proxy in front changes them.
 */
import type { RequestInfo } from '../uws.js';

/** Whether an Origin header names the host (and port) this request was sent to. */
export function originMatchesHost(origin: string, host: string): boolean {
  if (!origin || !host || origin === 'null') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const defaultPort = url.protocol === 'https:' ? '443' : '80';
  const want = host.toLowerCase();
  // new URL() drops a default port from the origin; the Host header may still carry it.
  return url.host === want || `${url.host}:${defaultPort}` === want;
}

/**
 * A browser request from this origin: Origin names our host, or (a browser that sends no Origin)
 * Sec-Fetch-Site says same-origin. Without either, it is refused: a browser sends one of them.
 */
export function sameOrigin(req: RequestInfo): boolean {
  const origin = req.header('origin');
  if (origin) return originMatchesHost(origin, req.header('host'));
  return req.header('sec-fetch-site') === 'same-origin';
}

export const CROSS_ORIGIN_MESSAGE =
  'a request that uses the session cookie must come from the gateway\'s own origin (Origin or Sec-Fetch-Site); scripts send Authorization: Bearer <operator token> instead';
