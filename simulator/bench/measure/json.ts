/**
 * JSON telemetry (issue 17) into the gateway: `json-mqtt`, 100 devices publishing QoS 1 on
 * devices/{id}/telemetry/json with seq (exactly once), and `json-http`, 100 devices POSTing to
 * /api/devices/{id}/telemetry without seq (at least once). Both counted by the gateway's answers,
 * which it sends only once the readings are safe (PUBACK, 202), so the figure is safe messages/s.
 */
import type { Child } from '../procs.js';
import { JSON_READINGS } from '../load/json.js';
import { startServer, type BenchKeys } from '../servers.js';
import { sample, startLoad, type Sampled, type WindowPlan } from './windows.js';

const PLAN: WindowPlan = { warmupMs: 1500, windowMs: 2000, windows: 2 };
export const JSON_DEVICES = 100;
/** Messages (MQTT) or requests (HTTP) each device keeps unanswered. */
export const JSON_IN_FLIGHT = { mqtt: 100, http: 2 } as const;

export async function jsonIngest(keys: BenchKeys, transport: 'mqtt' | 'http'): Promise<Sampled> {
  // The rate limit is for misbehaving devices, not for a benchmark.
  const server = await startServer('gateway', keys, ['--http-telemetry-rate', '0']);
  let load: Child | undefined;
  try {
    const port = transport === 'mqtt' ? server.mqttPort! : server.port;
    load = startLoad({ mode: transport === 'mqtt' ? 'json-mqtt' : 'json-http', host: '127.0.0.1', port, fleetKey: keys.fleetKey, devices: JSON_DEVICES, inFlight: JSON_IN_FLIGHT[transport] });
    await load.next('ready', 60_000);
    return await sample(load, server.child.pid, (l) => ({ t: l.ackedAt, frames: l.acked, readings: l.acked * JSON_READINGS }), PLAN);
  } finally {
    await server.stop();
    await load?.stop();
  }
}
