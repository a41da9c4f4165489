/**
 * Methods, from outside: every route answers a method it does not take with 405 METHOD_NOT_ALLOWED
 * and an `Allow` header naming the methods it does take (RFC 9110 §15.5.6), and answers each of
 * those without a 405. The probes /healthz and /readyz take GET and HEAD only.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, startGateway, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(() => gw?.close());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on its own connection, answered within 5 s. A body is sent for methods that carry one. */
function call(method: string, path: string, body?: string, token: string | undefined = OPERATOR_TOKEN): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const req = request(`${gw.http}${path}`, { method, agent: false, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`)));
    req.end(body);
  });
}

const PROBES = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * Every route, a path that reaches it, and the methods it takes: written here from the README's
 * API table, not read from the gateway, so a route that drifts from it fails.
 */
const ROUTES: [path: string, methods: string[]][] = [
  ['/healthz', ['GET', 'HEAD']],
  ['/readyz', ['GET', 'HEAD']],
  ['/metrics', ['GET', 'HEAD']],
  ['/api/devices', ['GET', 'HEAD', 'POST']],
  ['/api/devices/nobody-1', ['GET', 'HEAD', 'PATCH', 'DELETE']],
  ['/api/devices/nobody-1/history?channel=1', ['GET', 'HEAD']],
  ['/api/devices/nobody-1/telemetry', ['POST']],
  ['/api/devices/nobody-1/commands', ['GET', 'HEAD', 'POST']],
  ['/api/devices/nobody-1/token', ['POST']],
  ['/api/devices/nobody-1/disable', ['POST']],
  ['/api/devices/nobody-1/enable', ['POST']],
  ['/api/commands/no-such-command', ['GET', 'HEAD']],
  ['/api/alarms', ['GET', 'HEAD']],
  ['/api/alarms/no-such-alarm', ['GET', 'HEAD']],
  ['/api/alarms/no-such-alarm/acknowledge', ['POST']],
  ['/api/alarms/no-such-alarm/clear', ['POST']],
  ['/api/alarm-rules', ['GET', 'HEAD', 'POST']],
  ['/api/alarm-rules/no-such-rule', ['GET', 'HEAD', 'DELETE']],
  ['/api/live?device=nobody-1', ['GET', 'HEAD']],
  ['/api/device-types', ['GET', 'HEAD']],
  ['/api/session', ['GET', 'HEAD', 'POST', 'DELETE']],
  ['/api/login-codes', ['POST']],
];

function allowOf(a: Answer): string[] | undefined {
  const v = a.headers['allow'];
  return typeof v === 'string' ? v.split(',').map((m) => m.trim()).sort() : undefined;
}

describe('405 Method Not Allowed', () => {
  it.each(ROUTES)('%s: other methods get 405 METHOD_NOT_ALLOWED with Allow: the methods it takes', async (path, methods) => {
    for (const method of PROBES.filter((m) => !methods.includes(m))) {
      const a = await call(method, path, method === 'HEAD' ? undefined : '{}');
      expect(a.status, `${method} ${path}`).toBe(405);
      expect(allowOf(a), `${method} ${path}: Allow`).toEqual([...methods].sort());
      if (method !== 'HEAD') {
        const err = JSON.parse(a.body).error;
        expect(err.code).toBe('METHOD_NOT_ALLOWED');
        // The message names what to use instead.
        for (const m of methods) expect(err.message, `${method} ${path}`).toContain(m);
      }
    }
  });

  it.each(ROUTES)('%s: the methods in Allow are taken (never 405, never "no route")', async (path, methods) => {
    // A stream that would never end is not what this checks: its GET is HEAD's headers and a body.
    for (const method of methods.filter((m) => !(path.startsWith('/api/live') && m === 'GET'))) {
      const a = await call(method, path, method === 'GET' || method === 'HEAD' ? undefined : '{}');
      expect(a.status, `${method} ${path}`).not.toBe(405);
      if (a.status === 404 && method !== 'HEAD') expect(JSON.parse(a.body).error.code, `${method} ${path}`).not.toBe('NOT_FOUND');
    }
  });
});

describe('/healthz and /readyz', () => {
  it.each(['/healthz', '/readyz'])('%s answers GET with its JSON and HEAD with the same headers and no body', async (path) => {
    const get = await call('GET', path);
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body).status).toMatch(/^(ok|ready)$/);
    const head = await call('HEAD', path);
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(get.body));
  });

  it.each(['/healthz', '/readyz'])('%s refuses POST, PUT, PATCH and DELETE with 405 and Allow: GET, HEAD, without a token', async (path) => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const a = await call(method, path, undefined, undefined);
      expect(a.status, `${method} ${path}`).toBe(405);
      expect(allowOf(a)).toEqual(['GET', 'HEAD']);
      expect(JSON.parse(a.body).error.code).toBe('METHOD_NOT_ALLOWED');
    }
  });
});
