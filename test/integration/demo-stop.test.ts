/**
 * `npm run demo` stopped with Ctrl-C (SIGINT to its whole process group, as a terminal sends it):
 * the fleet delivers, the gateway stops cleanly, a last line says so, exit 0, and nothing is left
 * listening.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

describe('npm run demo', () => {
  it('stops on Ctrl-C with a final line, the gateway stopped cleanly, exit 0', async () => {
    const port = await freePort();
    const mqttPort = await freePort();
    // Its own process group, so the test can send the group a SIGINT the way a terminal does.
    const demo = spawn(process.execPath, [join(ROOT, 'dist/simulator/demo-run.js')], {
      cwd: tempDir('demo-'),
      env: { ...process.env, DEMO_PORT: String(port), DEMO_MQTT_PORT: String(mqttPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    demo.stdout.on('data', (b: Buffer) => (out += b.toString()));
    demo.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('Press Ctrl-C to stop.'), 'the demo to start', 30_000);
      // Let the devices connect and send a little.
      await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${port}/metrics`).then((res) => res.text(), () => '');
        return /^gateway_frames_total [1-9]/m.test(r);
      }, 'frames at the gateway', 20_000);
      process.kill(-demo.pid!, 'SIGINT');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      expect(code, out).toBe(0);
      expect(out).toMatch(/demo stopped in [\d.]+ s: 24 devices sent \d+ frames, every one acked; the gateway stopped cleanly\./);
      expect(out).not.toMatch(/second SIG/);
      // Nothing left listening on the demo's port.
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      if (demo.exitCode === null && demo.signalCode === null) process.kill(-demo.pid!, 'SIGKILL');
    }
  });
});
