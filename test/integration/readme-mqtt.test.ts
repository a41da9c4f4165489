/**
 * The README's MQTT recipe (gateway frame + mosquitto_pub), run in bash as written against the
 * built gateway; only the port 1883 becomes a free one. The ack must come back on the device's
 * connection and the reading must be stored.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gatewayArgs, ROOT, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { readmeBlock } from '../helpers/readme.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const pub = requireProgram('mosquitto_pub', 'mosquitto-clients');
const openssl = requireProgram('openssl', 'openssl');

let gw: ChildGateway | undefined;
const folders: string[] = [];
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs a bash script to its end (bounded: killed by PID after 30 s) and returns its output. */
function bash(script: string, cwd: string, path: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { ...process.env, PATH: `${path}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const kill = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
  });
}

describe.skipIf(!pub || !openssl)("README's MQTT recipe", () => {
  it('sends a frame made by `gateway frame` with mosquitto_pub and shows the ack', async () => {
    const mqttPort = await freePort();
    gw = await spawnGateway(gatewayArgs(tempDir(), '--fleet-key', 'my-fleet-secret', '--mqtt-port', String(mqttPort)));
    const recipe = readmeBlock('mqtt-recipe');
    expect(recipe.match(/-p 1883 /g)).toHaveLength(1);
    const script = recipe.replace('-p 1883 ', `-p ${mqttPort} `);

    // `gateway` on the PATH, as after npm install -g: the built CLI of this checkout.
    const work = tempDir();
    folders.push(work);
    const bin = join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'gateway'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'bin/gateway.js')}" "$@"\n`);
    chmodSync(join(bin, 'gateway'), 0o755);

    const { code, out } = await bash(script, work, bin);
    expect(code, out).toBe(0);
    expect(existsSync(join(work, 'frame.bin'))).toBe(true);
    expect(out).toContain("received PUBLISH (d0, q0, r0, m0, 'devices/greenhouse-1/commands', ... (20 bytes))");

    const device = await waitFor(async () => {
      const { body } = await gw!.api('/api/devices/greenhouse-1');
      return body.ackedSeq === 0 ? body : undefined;
    }, 'the reading to be stored');
    expect(device.epoch).toBe(1);
    expect(device.last['1'].value).toBe(21.5);
    expect(device.last['2'].value).toBe(true);
    expect(device.counters.frames).toBe(1);
    expect(device.counters.duplicates).toBe(1);
  });
});
