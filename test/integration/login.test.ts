/**
 * Operator login against a real gateway: one-time codes exchanged for a session cookie, the cookie
 * on the API, SSE and /live, the same-origin rules for cookie-borne requests (bearer-token requests
 * unaffected), and logout. Requests go through node:http so the test sets Origin and Cookie itself.
 */
import { readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FLEET_KEY, OPERATOR_TOKEN, spawnGateway, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway;
let origin: string;
let cookieName: string;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${gw.http}${path}`, { agent: false, method, headers: { connection: 'close', ...(data ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

const bearer = { authorization: `Bearer ${OPERATOR_TOKEN}` };

async function newCode(): Promise<string> {
  const r = await call('POST', '/api/login-codes', bearer);
  expect(r.status).toBe(201);
  return r.body.code as string;
}

/** Logs in with a fresh code and returns the `name=value` to send as Cookie. */
async function login(): Promise<string> {
  const r = await call('POST', '/api/session', { origin }, { code: await newCode() });
  expect(r.status).toBe(201);
  return String(r.headers['set-cookie']).split(';')[0]!;
}

/** Opens /live with these headers: 'open' (after hello) or the refused upgrade's status. */
function liveUpgrade(headers: Record<string, string>, query = ''): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.ws}/live${query}`, { headers });
    const t = setTimeout(() => reject(new Error('no answer to the /live upgrade within 5 s')), 5000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(t);
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on('message', (m) => {
      if (String(m).includes('"hello"')) {
        clearTimeout(t);
        resolve({ status: 101, ws });
      }
    });
    ws.on('error', () => {});
  });
}

beforeAll(async () => {
  gw = await startGateway();
  origin = gw.http;
  cookieName = `gateway_session_${gw.gateway.port}`;
});
afterAll(async () => {
  await gw?.close();
});

describe('login codes', () => {
  it('POST /api/login-codes gives a one-time link with the code in the fragment', async () => {
    const r = await call('POST', '/api/login-codes', bearer);
    expect(r.status).toBe(201);
    expect(r.body.url).toBe(`${gw.http}/#code=${r.body.code}`);
    expect(r.body.expiresAt).toBeGreaterThan(Date.now() + 60_000);
    expect(r.body.url).not.toContain(OPERATOR_TOKEN);
  });

  it('a code logs in once: HttpOnly, SameSite=Strict cookie; the second use is 401 LOGIN_CODE_USED', async () => {
    const code = await newCode();
    const first = await call('POST', '/api/session', { origin }, { code });
    expect(first.status).toBe(201);
    const set = String(first.headers['set-cookie']);
    expect(set).toMatch(new RegExp(`^${cookieName}=[^;]+; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict$`));
    expect(set).not.toContain(OPERATOR_TOKEN);
    expect(set).not.toContain(code);
    const again = await call('POST', '/api/session', { origin }, { code });
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: { code: 'LOGIN_CODE_USED', message: expect.stringMatching(/already used/) } });
    expect(again.headers['set-cookie']).toBeUndefined();
  });

  it('a wrong code is 401 LOGIN_CODE_INVALID, a missing one 400 BAD_LOGIN, a code from a foreign page 403', async () => {
    const wrong = await call('POST', '/api/session', { origin }, { code: 'not-a-code' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('LOGIN_CODE_INVALID');
    const missing = await call('POST', '/api/session', { origin }, {});
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('BAD_LOGIN');
    const code = await newCode();
    const foreign = await call('POST', '/api/session', { origin: 'http://evil.example' }, { code });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('CROSS_ORIGIN');
    // Refused before it was looked at: the code still works from the gateway's own page.
    expect((await call('POST', '/api/session', { origin }, { code })).status).toBe(201);
  });

  it('only the operator token makes codes, not a session', async () => {
    const cookie = await login();
    const r = await call('POST', '/api/login-codes', { cookie, origin });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('TOKEN_REQUIRED');
    expect((await call('POST', '/api/login-codes')).status).toBe(401);
  });

  it('the operator token itself can be exchanged for a session (old /?token= links)', async () => {
    const r = await call('POST', '/api/session', { ...bearer, origin });
    expect(r.status).toBe(201);
    expect(String(r.headers['set-cookie'])).toMatch(new RegExp(`^${cookieName}=`));
    const wrong = await call('POST', '/api/session', { authorization: 'Bearer nope', origin });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('UNAUTHORIZED');
  });
});

describe('the session cookie', () => {
  it('reads the API and SSE; without it or with a foreign cookie, 401', async () => {
    const cookie = await login();
    const list = await call('GET', '/api/devices', { cookie });
    expect(list.status).toBe(200);
    expect(list.body).toHaveProperty('devices');
    expect((await call('GET', '/api/session', { cookie })).body).toMatchObject({ via: 'session', idleSeconds: 43200 });
    const none = await call('GET', '/api/devices');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHORIZED');
    const forged = await call('GET', '/api/devices', { cookie: `${cookieName}=abc.def.ghi.jkl` });
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('SESSION_ENDED');

    const sse = await new Promise<{ status: number; type: string }>((resolve, reject) => {
      const req = request(`${gw.http}/api/live?device=d1`, { agent: false, headers: { cookie } }, (res) => {
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) });
        req.destroy();
      });
      req.on('error', (err) => (err.message.includes('aborted') || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      req.end();
    });
    expect(sse).toEqual({ status: 200, type: 'text/event-stream; charset=utf-8' });
  });

  it('changes state only from the gateway\'s own origin; the bearer token from anywhere', async () => {
    const cookie = await login();
    const cmd = { name: 'reboot', args: {} };
    // Accepted requests reach the command route (a device never seen: 201 queued or 404, not 403).
    const own = await call('POST', '/api/devices/d1/commands', { cookie, origin }, cmd);
    expect([200, 201, 404]).toContain(own.status);
    const fetchMeta = await call('POST', '/api/devices/d1/commands', { cookie, 'sec-fetch-site': 'same-origin' }, cmd);
    expect([200, 201, 404]).toContain(fetchMeta.status);

    for (const headers of [{ origin: 'http://evil.example' }, { origin: `http://127.0.0.1:${gw.gateway.port + 1}` }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, {}] as Record<string, string>[]) {
      const r = await call('POST', '/api/devices/d1/commands', { cookie, ...headers }, cmd);
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.body.error.code).toBe('CROSS_ORIGIN');
    }
    // Reads are not state changes (SameSite=Strict keeps the cookie off cross-site requests anyway).
    expect((await call('GET', '/api/devices', { cookie, origin: 'http://evil.example' })).status).toBe(200);
    // Scripts with the token: no origin rule.
    const script = await call('POST', '/api/devices/d1/commands', { ...bearer, origin: 'http://evil.example' }, cmd);
    expect([200, 201, 404]).toContain(script.status);
  });

  it('opens /live only from the gateway\'s own origin; the token from anywhere, in the header or ?token=', async () => {
    const cookie = await login();
    const own = await liveUpgrade({ cookie, origin });
    expect(own.status).toBe(101);
    own.ws!.terminate();
    expect((await liveUpgrade({ cookie, origin: 'http://evil.example' })).status).toBe(403);
    expect((await liveUpgrade({ cookie })).status).toBe(403);
    expect((await liveUpgrade({ origin })).status).toBe(401);
    const header = await liveUpgrade({ ...bearer, origin: 'http://evil.example' });
    expect(header.status).toBe(101);
    header.ws!.terminate();
    const query = await liveUpgrade({ origin: 'http://evil.example' }, `?token=${OPERATOR_TOKEN}`);
    expect(query.status).toBe(101);
    query.ws!.terminate();
  });

  it('logout ends the session: the cookie is deleted, refused afterwards, and its /live socket closed', async () => {
    const cookie = await login();
    const other = await login();
    const live = await liveUpgrade({ cookie, origin });
    expect(live.status).toBe(101);
    const closed = new Promise<number>((resolve) => live.ws!.once('close', (code) => resolve(code)));

    // A foreign page cannot log the browser out.
    expect((await call('DELETE', '/api/session', { cookie, origin: 'http://evil.example' })).status).toBe(403);
    expect((await call('GET', '/api/devices', { cookie })).status).toBe(200);

    const out = await call('DELETE', '/api/session', { cookie, origin });
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ loggedOut: true });
    expect(String(out.headers['set-cookie'])).toMatch(new RegExp(`^${cookieName}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict$`));
    expect(await waitFor(() => closed, 'the /live socket to close', 5000)).toBe(4410);
    const after = await call('GET', '/api/devices', { cookie });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('SESSION_ENDED');
    expect((await liveUpgrade({ cookie, origin })).status).toBe(401);
    // Other sessions go on.
    expect((await call('GET', '/api/devices', { cookie: other })).status).toBe(200);
  });
});

describe('the gateway command', () => {
  it('prints a one-time login link, never the token in a URL; a generated token is printed for scripts', async () => {
    const dataDir = tempDir();
    const child = await spawnGateway(['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir]);
    try {
      const out = await waitFor(() => (/generated for this run: (\S+)/.test(child.output()) ? child.output() : undefined), 'the generated token line', 10_000);
      const link = /\(dashboard: (\S+)\)/.exec(out)![1]!;
      const token = /generated for this run: (\S+)/.exec(out)![1]!;
      expect(link).toMatch(new RegExp(`^${child.http}/#code=[\\w.-]+$`));
      expect(link).not.toContain(token);
      expect(out).not.toMatch(/[?&#]token=/);
      const code = link.split('#code=')[1]!;
      const login = (c: string) => fetch(`${child.http}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ code: c }) });
      expect((await login(code)).status).toBe(201);
      const again = await login(code);
      expect(again.status).toBe(401);
      expect(((await again.json()) as { error: { code: string } }).error.code).toBe('LOGIN_CODE_USED');
      // The printed token makes new links.
      const next = await fetch(`${child.http}/api/login-codes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, connection: 'close' } });
      expect(next.status).toBe(201);
      expect((await login(((await next.json()) as { code: string }).code)).status).toBe(201);
    } finally {
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('--workers 2', () => {
  /** A request over a kept-alive connection (so it reaches the worker that connection belongs to). */
  function on(agent: Agent, base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(`${base}${path}`, { agent, method, headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  it('spends a code and ends a logged-out session in every worker, whichever the browser reaches', async () => {
    const dataDir = tempDir('login-workers-');
    const child = await spawnGateway(['--workers', '2', '--host', '127.0.0.1', '--port', '0', '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN, '--data-dir', dataDir]);
    const agents = new Map<number, Agent>();
    try {
      // One kept-alive connection to each worker: new connections until both pids answered.
      for (let i = 0; i < 200 && agents.size < 2; i++) {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        const pid = ((await on(agent, child.http, 'GET', '/healthz')).body as { pid: number }).pid;
        if (agents.has(pid)) agent.destroy();
        else agents.set(pid, agent);
      }
      expect(agents.size, 'connections reaching both workers').toBe(2);
      const [a, b] = [...agents.values()] as [Agent, Agent];
      const origin = child.http;

      const code = ((await on(a, child.http, 'POST', '/api/login-codes', bearer)).body as { code: string }).code;
      const first = await on(a, child.http, 'POST', '/api/session', { origin }, { code });
      expect(first.status).toBe(201);
      const second = await on(b, child.http, 'POST', '/api/session', { origin }, { code });
      expect(second.status).toBe(401);
      expect(second.body.error.code).toBe('LOGIN_CODE_USED');

      // The session works on both; a logout on one ends it on the other.
      const cookie = String(first.headers['set-cookie']).split(';')[0]!;
      expect((await on(b, child.http, 'GET', '/api/devices', { cookie })).status).toBe(200);
      expect((await on(a, child.http, 'DELETE', '/api/session', { cookie, origin })).status).toBe(200);
      const after = await waitFor(async () => {
        const r = await on(b, child.http, 'GET', '/api/devices', { cookie });
        return r.status === 401 ? r : undefined;
      }, 'the other worker to refuse the logged-out session', 5000);
      expect(after.body.error.code).toBe('SESSION_ENDED');
    } finally {
      for (const agent of agents.values()) agent.destroy();
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('over TLS', () => {
  const openssl = requireProgram('openssl', 'openssl');

  it.skipIf(!openssl)('marks the session cookie Secure (and not on the plaintext port beside it)', async () => {
    const dir = tempDir('login-tls-');
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(openssl!, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const tls = await startGateway({ cert, key, plaintextPort: await freePort() });
    try {
      const cookieOver = (secure: boolean) =>
        new Promise<string>((resolve, reject) => {
          const port = secure ? tls.gateway.port : tls.gateway.plaintextPort;
          const send = secure ? httpsRequest : request;
          const req = send(`${secure ? 'https' : 'http'}://127.0.0.1:${port}/api/session`, { agent: false, method: 'POST', headers: bearer, ...(secure ? { ca: readFileSync(cert) } : {}) }, (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.headers['set-cookie'])));
          });
          req.on('error', reject);
          req.end();
        });
      expect(await cookieOver(true)).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
      expect(await cookieOver(false)).toMatch(/; HttpOnly; SameSite=Strict$/);
    } finally {
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
