#!/usr/bin/env node
/**
 * `npm run demo`: a gateway on embedded defaults (its own process, as users run it) with the demo
 * fleet streaming into it, and the dashboard login link and operator token printed. Ctrl-C stops both,
 * in order: the fleet delivers what it holds while the gateway still runs, then the gateway stops
 * gracefully, and a last line says how it went. The gateway runs in its own process group so the
 * terminal's Ctrl-C reaches only the demo, which stops it (a gateway stopping under the fleet's
 * feet made the fleet wait for acks that never came, ~12 s, and the demo's SIGTERM then hit it as
 * a "second signal").
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startDemoFleet } from './demo.js';

const port = Number(process.env.DEMO_PORT ?? 8080);
const mqttPort = Number(process.env.DEMO_MQTT_PORT ?? 1883);
const fleetKey = process.env.DEMO_FLEET_KEY ?? randomBytes(16).toString('hex');
const gatewayCli = fileURLToPath(new URL('../gateway/cli.js', import.meta.url));

const gateway = spawn(
  process.execPath,
  [gatewayCli, '--host', '127.0.0.1', '--port', String(port), '--mqtt-port', String(mqttPort), '--fleet-key', fleetKey, '--data-dir', '.data/demo', '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
);
// Whatever ends the demo ends its gateway too (it is in another process group: Ctrl-C does not reach it).
process.on('exit', () => {
  if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGTERM');
});

let fleet: ReturnType<typeof startDemoFleet> | undefined;
let out = '';
gateway.stdout!.on('data', (b: Buffer) => {
  out += b.toString();
  const m = /listening on (\S+) \(dashboard: (\S+)\)/.exec(out);
  const token = /so one was generated for this run: (\S+)/.exec(out)?.[1];
  if (m && token && !fleet) {
    fleet = startDemoFleet({ url: `ws://127.0.0.1:${port}`, fleetKey });
    process.stdout.write(
      `\nTelemetry gateway demo: ${fleet.ids.length} simulated devices are streaming.\n\n` +
        `  Dashboard:  ${m[2]}\n` +
        `              (a one-time login link, good for 2 minutes; for another:\n` +
        `               curl -X POST -H "Authorization: Bearer ${token}" ${m[1]}/api/login-codes)\n` +
        `  API:        ${m[1]}/api/devices with Authorization: Bearer ${token}\n` +
        `  MQTT:       mqtt://127.0.0.1:${mqttPort} (device id as user name, fleet token as password)\n` +
        `  Fleet key:  ${fleetKey}\n` +
        (fleet.incident.length > 0
          ? `\nAn incident is staged, so alarms fire (dashboard: Alarms) within about 30 s:\n${fleet.incident.map((p) => `  ${p.text}\n`).join('')}`
          : '') +
        `\nPress Ctrl-C to stop.\n`,
    );
  }
});
gateway.once('exit', (code) => {
  if (!stopping) {
    process.stderr.write(`demo: the gateway exited (${code}). Is port ${port} or ${mqttPort} in use? Set DEMO_PORT / DEMO_MQTT_PORT.\n`);
    void fleet?.close();
    process.exit(1);
  }
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) {
    process.stdout.write(`demo: second ${signal}, stopping at once\n`);
    gateway.kill('SIGKILL');
    process.exit(130);
  }
  stopping = true;
  const started = Date.now();
  process.stdout.write('\nstopping: the fleet delivers what it holds (up to 2 s), then the gateway stops…\n');
  const summary = await fleet?.close().catch(() => undefined);
  const exited = new Promise<number | null>((resolve) => {
    if (gateway.exitCode !== null || gateway.signalCode !== null) resolve(gateway.exitCode);
    else gateway.once('exit', (code) => resolve(code));
  });
  // Stopped by its PID, gracefully.
  gateway.kill('SIGTERM');
  const killer = setTimeout(() => gateway.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(killer);
  const fleetLine = summary
    ? `${summary.devices} devices sent ${summary.sent} frames, ${summary.acked === summary.sent ? 'every one acked' : `${summary.acked} acked`}`
    : 'the fleet had not started';
  process.stdout.write(`demo stopped in ${((Date.now() - started) / 1000).toFixed(1)} s: ${fleetLine}; the gateway ${code === 0 ? 'stopped cleanly' : `exited with ${code}`}.\n`);
  process.exit(code === 0 && (!summary || summary.acked === summary.sent) ? 0 : 1);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
