/**
 * The built `gateway` command on settings a newcomer gets wrong: one line naming the flag, exit 2,
 * never a stack trace; and a warning when no device could ever connect.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { ROOT, OPERATOR_TOKEN, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';

function run(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/gateway/cli.js'), '--host', '127.0.0.1', '--port', '0', '--mqtt-port', '0', '--data-dir', tempDir('cli-err-'), ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, GATEWAY_LOG_LEVEL: 'warn' },
  });
  return { status: r.status, stderr: r.stderr };
}

function expectOneLine(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.status).toBe(2);
}

let gw: ChildGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

describe('gateway CLI errors', () => {
  it('--influx with a scheme other than http(s)', () => {
    expectOneLine(run('--influx', 'foo://bar'), /--influx \(GATEWAY_INFLUX\)/);
  });

  it('--registry naming a missing file', () => {
    expectOneLine(run('--registry', '/missing.json'), /--registry \(GATEWAY_REGISTRY\) \/missing\.json cannot be read/);
  });

  it('--registry naming a file that is not a registry', () => {
    const path = join(tempDir('cli-reg-'), 'registry.json');
    writeFileSync(path, '{ "devices": 3 }');
    expectOneLine(run('--registry', path), /CONFIG_INVALID.*registry .* must be \{ "devices"/);
  });

  it('a flag where a value belongs', () => {
    expectOneLine(run('--fleet-key', '--port', '18095'), /--fleet-key needs a value, got the flag --port/);
  });

  it('names MQTT_BRIDGE_CONNECT (as the README says) when the --mqtt-url broker cannot be reached', async () => {
    const r = run('--fleet-key', 'k', '--mqtt-url', `mqtt://127.0.0.1:${await freePort()}`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/could not start \[MQTT_BRIDGE_CONNECT\]: could not connect to the MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+\/? \(--mqtt-url\)/);
    expect(r.stderr).not.toContain('CLUSTER_CONNECT');
  });

  it('warns that every device will be refused when neither --fleet-key nor --registry is set', async () => {
    gw = await spawnGateway(['--host', '127.0.0.1', '--port', '0', '--operator-token', OPERATOR_TOKEN, '--data-dir', tempDir('cli-warn-')]);
    // Log lines are written asynchronously: they may follow the URL line.
    await waitFor(() => gw!.output().includes('NO_CREDENTIALS_SOURCE'), 'the warning', 10_000);
    expect(gw.output()).toMatch(/neither --fleet-key .* nor --registry/);
  });
});
