/**
 * The built `simulate` command when its devices cannot deliver: it must never say OK for a run in
 * which nothing connected. Exit 1, the JSON summary (devices, sent, acked, neverConnected, refused)
 * and the reason: connection refused, an untrusted certificate (fixed with --ca), HTTP 401.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FLEET_KEY, ROOT, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { requireProgram } from '../helpers/services.js';

const openssl = requireProgram('openssl', 'openssl');
let certFile = '';
let keyFile = '';
beforeAll(() => {
  if (!openssl) return;
  const dir = tempDir('sim-tls-');
  certFile = join(dir, 'cert.pem');
  keyFile = join(dir, 'key.pem');
  execFileSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
});

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

interface Run {
  code: number | null;
  summary: { ok: boolean; devices: number; sent: number; acked: number; neverConnected: number; refused: number; reasons: Record<string, string> };
  stderr: string;
}

/** Runs `simulate --json` for a short while (bounded: killed after 30 s) and parses its last stdout line. */
function simulate(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(ROOT, 'dist/simulator/cli.js'), '--devices', '2', '--duration', '1', '--drain', '1', '--workers', '0', '--json', ...args], {
      env: { ...process.env, SIMULATE_FLEET_KEY: FLEET_KEY, NODE_EXTRA_CA_CERTS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(killer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve({ code, summary: JSON.parse(last), stderr: err });
      } catch {
        reject(new Error(`simulate printed no JSON summary (exit ${code}): ${out}${err}`));
      }
    });
  });
}

describe('simulate when devices cannot deliver', () => {
  it('exits 1 with "connection refused" when nothing listens at --url', async () => {
    const r = await simulate('--url', `ws://127.0.0.1:${await freePort()}`);
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ok: false, devices: 2, sent: 0, acked: 0, neverConnected: 2 });
    expect(r.summary.reasons.CONNECT_FAILED).toMatch(/ECONNREFUSED/);
  });

  it.skipIf(!openssl)('exits 1 naming the untrusted certificate over wss://, and delivers everything with --ca', async () => {
    gw = await startGateway({ cert: certFile, key: keyFile });
    const url = `wss://localhost:${gw.gateway.port}`;
    const untrusted = await simulate('--url', url);
    expect(untrusted.code).toBe(1);
    expect(untrusted.summary).toMatchObject({ ok: false, sent: 0, neverConnected: 2 });
    expect(untrusted.summary.reasons.CONNECT_FAILED).toMatch(/certificate/);

    const trusted = await simulate('--url', url, '--ca', certFile);
    expect(trusted.code).toBe(0);
    expect(trusted.summary).toMatchObject({ ok: true, devices: 2, neverConnected: 0, refused: 0 });
    expect(trusted.summary.sent).toBeGreaterThan(0);
    expect(trusted.summary.acked).toBe(trusted.summary.sent);
  });

  it('exits 1 with HTTP 401 when the fleet key is not the gateway\'s', async () => {
    gw = await startGateway();
    const r = await simulate('--url', `ws://127.0.0.1:${gw.gateway.port}`, '--fleet-key', 'not-the-key');
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ok: false, devices: 2, sent: 0, refused: 2 });
    expect(r.summary.reasons.UNAUTHORIZED).toMatch(/HTTP 401/);
  });

  it('says why in the human summary', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'dist/simulator/cli.js'), '--url', `ws://127.0.0.1:${await freePort()}`, '--devices', '1', '--duration', '1', '--drain', '0', '--workers', '0'], {
      env: { ...process.env, SIMULATE_FLEET_KEY: FLEET_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    clearTimeout(killer);
    expect(code).toBe(1);
    expect(out).toMatch(/CONNECT_FAILED: could not connect: .*ECONNREFUSED/);
    expect(out).toMatch(/^simulated 1 device over ws/m);
    expect(out).toMatch(/1 device never connected/);
    expect(out).toMatch(/^NOT OK: of 1 device, 1 never connected/m);
    expect(out).not.toMatch(/^OK/m);
  });
});
