/**
 * The npm package end to end: pack this checkout, install the tarball into an empty project, run
 * the installed `gateway --help` and `simulate --help`, type-check an import of each entry, start
 * the installed gateway (it refuses to start when uWebSockets.js is not native), and run the
 * README's ten-line device, as written, through the installed SDK until the gateway acks it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/gateway.js';
import { installTarball, packCheckout, runProgram } from '../helpers/pack.js';
import { readmeBlock } from '../helpers/readme.js';
import { waitFor } from '../helpers/wait.js';

const work = tempDir('gw-pkg-');
const app = join(work, 'app');
const bin = (name: string) => join(app, 'node_modules/.bin', name);
const started: ChildProcess[] = [];

beforeAll(async () => {
  const tgz = await packCheckout(work);
  await runProgram('mkdir', ['-p', app], { cwd: work });
  const { how } = await installTarball(app, tgz);
  if (how !== 'registry') console.warn('package.test: the npm registry was not reachable; installed offline from package-lock.json');
}, 180_000);

afterAll(() => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** Starts an installed program; its output accumulates in the returned getter. */
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const proc = spawn(cmd, args, { cwd: app, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

describe('the npm package', () => {
  it('installs the gateway, simulate and telemetry-gateway commands, and each answers --help', async () => {
    for (const [name, usage] of [['gateway', 'Usage: gateway'], ['telemetry-gateway', 'Usage: gateway'], ['simulate', 'Usage: simulate']] as const) {
      const r = await runProgram(bin(name), ['--help'], { cwd: app, timeoutMs: 20_000 });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(usage);
    }
    const frame = await runProgram(bin('gateway'), ['frame', '--channel', '1=21.5', '--hex'], { cwd: app, timeoutMs: 20_000 });
    expect(frame.code, frame.out).toBe(0);
    expect(frame.out).toMatch(/^0101[0-9a-f]+\n$/);
  });

  it('ships the built dashboard, the protocol spec and types, and no sources or tests', () => {
    const pkg = join(app, 'node_modules/telemetry-gateway');
    for (const f of ['dashboard/dist/index.html', 'devices/PROTOCOL.md', 'dist/devices/sdk/index.d.ts', 'dist/gateway/index.d.ts', 'deploy/gateway.service', 'deploy/gateway.config.json']) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    for (const f of ['gateway/cli.ts', 'test', 'dist/simulator/bench', 'node_modules/.bin/vitest']) expect(existsSync(join(pkg, f)), f).toBe(false);
  });

  it('types: the sdk, codec and main entries type-check from a TypeScript project', async () => {
    writeFileSync(
      join(app, 'check.ts'),
      [
        "import { DeviceClient, fleetToken, type DeviceClientOptions } from 'telemetry-gateway/sdk';",
        "import { encodeTelemetry } from 'telemetry-gateway/codec';",
        "import { Gateway, defaultConfig } from 'telemetry-gateway';",
        "const options: DeviceClientOptions = { url: 'ws://localhost:8080', deviceId: 'd', token: fleetToken('k', 'd') };",
        'const client: DeviceClient = new DeviceClient(options);',
        'const bytes: Uint8Array = encodeTelemetry({ timestamp: 0 }, [{ channel: 1, value: 1 }]);',
        '// @ts-expect-error readings are objects: the declarations are real types, not any',
        "client.send('21.5');",
        'export const used = [bytes, Gateway, defaultConfig()];',
        '',
      ].join('\n'),
    );
    const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] }, files: ['check.ts'] };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
    const r = await runProgram(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app, timeoutMs: 60_000 });
    expect(r.code, r.out).toBe(0);
  });

  it("starts from the installed bin and acks the README's ten-line device run with node", async () => {
    const gateway = start(bin('gateway'), ['--host', '127.0.0.1', '--port', '0', '--mqtt-port', '0', '--fleet-key', 'my-fleet-secret', '--data-dir', join(work, 'data')], { GATEWAY_LOG_LEVEL: 'warn' });
    const port = await Promise.race([
      waitFor(() => Number(/listening on http:\/\/[^:]+:(\d+)/.exec(gateway.output())?.[1] ?? 0), 'the installed gateway to print its URL', 20_000),
      gateway.exited.then((code) => {
        throw new Error(`the installed gateway exited with ${code}: ${gateway.output()}`);
      }),
    ]);
    // The packed dashboard is what the installed gateway serves.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script');

    writeFileSync(join(app, 'example.mjs'), readmeBlock('device-example'));
    const device = start(process.execPath, ['example.mjs'], { GATEWAY_URL: `ws://127.0.0.1:${port}` });
    await Promise.race([
      waitFor(() => /stored up to seq 0\n/.test(device.output()), 'the device to be acked', 20_000),
      device.exited.then((code) => {
        throw new Error(`example.mjs exited with ${code}: ${device.output()}`);
      }),
    ]);
    device.proc.kill('SIGINT');
    expect(await device.exited, device.output()).toBe(0);

    gateway.proc.kill('SIGTERM');
    expect(await gateway.exited, gateway.output()).toBe(0);
  });
});
