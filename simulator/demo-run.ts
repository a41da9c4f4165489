#!/usr/bin/env node
/**
 * `npm run demo`: a gateway on embedded defaults (its own process, as users run it) with the demo
 * fleet streaming into it, and the dashboard login link and operator token printed. Ctrl-C stops both.
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
  { stdio: ['ignore', 'pipe', 'inherit'] },
);

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
        `  Fleet key:  ${fleetKey}\n\nPress Ctrl-C to stop.\n`,
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
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping the fleet and the gateway…\n');
  await fleet?.close().catch(() => undefined);
  // Stopped by its PID, gracefully.
  gateway.kill('SIGTERM');
  const killer = setTimeout(() => gateway.kill('SIGKILL'), 10_000);
  gateway.once('exit', () => {
    clearTimeout(killer);
    process.exit(0);
  });
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
