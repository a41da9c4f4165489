/**
 * The session cookie on the wire. Its name carries the port the browser used (as Jupyter's does),
 * because cookies are per host, not per port: two gateways on one machine keep their own logins.
 */
import type { RequestInfo } from '../uws.js';

/** `gateway_session_8080` for Host `localhost:8080`; `gateway_session` without a port. */
export function cookieName(req: RequestInfo): string {
  const port = /:(\d{1,5})$/.exec(req.header('host'))?.[1];
  return port ? `gateway_session_${port}` : 'gateway_session';
}

/** The value of one cookie from the request's Cookie header, or ''. */
export function readCookie(req: RequestInfo, name: string): string {
  for (const part of req.header('cookie').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

/** Set-Cookie for a session value; Secure when the request came over TLS. An empty value with maxAge 0 deletes it. */
export function sessionCookie(req: RequestInfo, value: string, maxAgeSeconds: number): string {
  return `${cookieName(req)}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; HttpOnly; SameSite=Strict${req.secure ? '; Secure' : ''}`;
}
