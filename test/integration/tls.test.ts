/** TLS end to end with a self-signed certificate made at test time: HTTPS, wss://, mqtts://. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { parseConfig } from '../../gateway/config.js';
import { deviceToken, OPERATOR_TOKEN, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { requireProgram } from '../helpers/services.js';

const openssl = requireProgram('openssl', 'openssl');
let certFile = '';
let keyFile = '';
let ca: Buffer;
beforeAll(() => {
  if (!openssl) return;
  const dir = tempDir('tls-');
  certFile = join(dir, 'cert.pem');
  keyFile = join(dir, 'key.pem');
  execFileSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  ca = readFileSync(certFile);
});

let gw: TestGateway | undefined;
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await gw?.close();
  gw = undefined;
});

function get(url: string, trust?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: trust, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function client(url: string, id: string, trust?: Buffer): DeviceClient {
  const c = new DeviceClient({ url, deviceId: id, token: deviceToken(id), ca: trust, backoffInitialMs: 50, backoffMaxMs: 200, connectTimeoutMs: 3000 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

describe.skipIf(!openssl)('TLS', () => {
  it('serves HTTPS, wss:// and mqtts:// with --cert/--key, and nothing in plaintext', async () => {
    gw = await startGateway({ cert: certFile, key: keyFile, mqttPort: await freePort() });
    expect(gw.gateway.url).toMatch(/^https:/);
    expect(gw.gateway.mqttUrl).toMatch(/^mqtts:/);
    const https = `https://127.0.0.1:${gw.gateway.port}`;
    expect(await get(`${https}/healthz`, ca)).toMatchObject({ status: 200 });
    expect(JSON.parse((await get(`${https}/api/devices`, ca)).body)).toEqual({ devices: [] });
    // An untrusted certificate is refused by the client; plaintext gets nothing on the TLS port.
    await expect(get(`${https}/healthz`)).rejects.toThrow(/self.signed|certificate/i);
    await expect(fetch(`http://127.0.0.1:${gw.gateway.port}/healthz`)).rejects.toThrow();

    for (const [scheme, port] of [['wss', gw.gateway.port], ['mqtts', gw.gateway.mqttPort]] as const) {
      const c = client(`${scheme}://localhost:${port}`, `tls-${scheme}`, ca);
      await c.connect();
      c.send({ channel: 1, value: 42 });
      await c.close();
      expect(c.stats).toMatchObject({ unacked: 0, acked: 1 });
    }
    const { body } = await get(`${https}/api/devices/tls-mqtts`, ca);
    expect(JSON.parse(body)).toMatchObject({ counters: { frames: 1 } });
  });

  it('serves plaintext beside TLS only on the ports the flags name', async () => {
    const [plain, mqttPlain] = [await freePort(), await freePort()];
    gw = await startGateway({ cert: certFile, key: keyFile, plaintextPort: plain, mqttPort: await freePort(), mqttPlaintextPort: mqttPlain });
    expect((await fetch(`http://127.0.0.1:${plain}/healthz`)).status).toBe(200);
    for (const url of [`ws://127.0.0.1:${plain}`, `mqtt://127.0.0.1:${mqttPlain}`]) {
      const c = client(url, `plain-${url.slice(0, 2)}`);
      await c.connect();
      c.send({ channel: 1, value: 1 });
      await c.close();
      expect(c.stats.unacked).toBe(0);
    }
  });

  it('checks the TLS settings at start, naming the flags', () => {
    expect(() => parseConfig(['--cert', certFile], {})).toThrow(/--cert .* and --key .* go together/);
    expect(() => parseConfig(['--plaintext-port', '8081'], {})).toThrow(/need --cert and --key/);
    expect(() => parseConfig(['--cert', '/nope.pem', '--key', keyFile], {})).toThrow(/--cert \/nope.pem cannot be read/);
  });
});
