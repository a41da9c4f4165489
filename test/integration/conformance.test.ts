/**
 * The conformance runner (`npm run conformance`), built, run as a child process against a real
 * gateway: every check must pass (this is the CI run of it), and a failing check must show as
 * FAIL with exit status 1.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceToken, FLEET_KEY, OPERATOR_TOKEN, ROOT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

interface Result {
  name: string;
  result: 'pass' | 'FAIL' | 'skip';
  detail: string;
}

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ mqttPort: await freePort() });
});
afterAll(async () => {
  await gw.close();
});

async function conformance(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const proc = spawn(process.execPath, [join(ROOT, 'dist/devices/conformance/cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 50_000);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  clearTimeout(timer);
  return { code, out, err };
}

const target = (): string[] => ['--url', gw.http, '--mqtt-url', `mqtt://127.0.0.1:${gw.gateway.mqttPort}`];

describe('npm run conformance against a live gateway', () => {
  it('passes every check with a fleet key and the operator token (nothing skipped)', async () => {
    const { code, out, err } = await conformance([...target(), '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN, '--json']);
    const results = (JSON.parse(out) as { results: Result[] }).results;
    expect(results.filter((r) => r.result !== 'pass')).toEqual([]);
    expect(code, err).toBe(0);
    const names = results.map((r) => r.name);
    // What the runner must cover (issue 15): auth at upgrade, bad frames, acks, dedupe, commands,
    // CONNACK codes, the ACL and the MQTT must-close rules.
    for (const n of ['ws.auth.no-token', 'ws.bad-frame.', 'ws.telemetry.ack', 'ws.ack.cumulative', 'ws.ack-sequence.reboot-kept-frames-then-new-boot', 'ws.ack-sequence.gap-before-on-a-resend', 'mqtt.ack-sequence.reboot-kept-frames-then-new-boot', 'ws.dedupe.resend', 'ws.command.round-trip', 'mqtt.connack.bad-token', 'mqtt.acl.publish-foreign-topic', 'mqtt.command.puback-delivers', 'mqtt.must-close.']) {
      expect(names.some((x) => x.startsWith(n)), n).toBe(true);
    }
    expect(results.find((r) => r.name === 'ws.dedupe.resend')?.detail).toBe('resend acked and counted once');
  });

  it('runs as one device given by --device-id and --token, skipping what needs the operator token', async () => {
    const { code, out } = await conformance([...target(), '--device-id', 'maker-1', '--token', deviceToken('maker-1'), '--only', 'ws.telemetry,ws.dedupe,ws.command,mqtt.acl', '--json']);
    const results = (JSON.parse(out) as { results: Result[] }).results;
    expect(results.map((r) => [r.name, r.result])).toEqual([
      ['ws.telemetry.ack', 'pass'],
      ['ws.dedupe.resend', 'pass'],
      ['ws.command.round-trip', 'skip'],
      ['mqtt.acl.publish-foreign-topic', 'pass'],
      ['mqtt.acl.subscribe-foreign-topic', 'pass'],
    ]);
    expect(code).toBe(0);
  });

  it('prints FAIL and exits 1 when the gateway does not do what a check expects', async () => {
    // The gateway's limit is 65536, so a 101-byte frame is not refused as FRAME_TOO_LARGE.
    const { code, out } = await conformance([...target(), '--fleet-key', FLEET_KEY, '--only', 'ws.too-large', '--max-frame-bytes', '100']);
    expect(out).toMatch(/^FAIL\s+ws\.too-large .*want 100 \(FRAME_TOO_LARGE\)/m);
    expect(out).toMatch(/0 passed, 1 failed, 0 skipped/);
    expect(code).toBe(1);
  });

  it('refuses bad options with exit status 2 and says which', async () => {
    const { code, err } = await conformance(['--url', gw.http]);
    expect(code).toBe(2);
    expect(err).toMatch(/give --fleet-key, or --device-id and --token/);
  });
});
