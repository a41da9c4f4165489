/** HEAD answers what GET would, without the body: its Content-Length is the body's, never 0. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
const INDEX = '<!doctype html><title>dashboard</title><p>hello</p>\n';

beforeAll(async () => {
  const dir = tempDir('head-dashboard-');
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  gw = await startGateway({ dashboardDir: dir });
});
afterAll(() => gw?.close());

function raw(method: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.http}${path}`, { method, agent: false, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`)));
    req.end();
  });
}

describe('HEAD', () => {
  it.each(['/', '/api/devices', '/healthz'])('HEAD %s has the Content-Length of GET and no body', async (path) => {
    const get = await raw('GET', path);
    const head = await raw('HEAD', path);
    expect(head.status).toBe(get.status);
    expect(Number(get.headers['content-length'])).toBe(Buffer.byteLength(get.body));
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(get.body));
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.body).toBe('');
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
  });
});
