/**
 * MQTT ingest with 100 publishers (pre-encoded PUBLISH packets carrying valid frames with fresh
 * seqs): into the gateway's embedded broker, counted by the gateway's ingest; and through a plain
 * Mosquitto, counted by one subscriber to devices/+/telemetry (QoS 0 subscription, so delivery to
 * the consumer needs no acks, as in the gateway where the consumer is in-process).
 */
import type { Child } from '../procs.js';
import { READINGS_PER_FRAME } from '../frames.js';
import { startServer, SERVER_CORE, type BenchKeys } from '../servers.js';
import { startMosquitto } from '../../services/index.js';
import { sample, startLoad, type Sampled, type WindowPlan } from './windows.js';

const PLAN: WindowPlan = { warmupMs: 2000, windowMs: 3000, windows: 2 };

export async function mqttGateway(keys: BenchKeys, publishers: number, qos: 0 | 1): Promise<Sampled> {
  const server = await startServer('gateway', keys);
  let load: Child | undefined;
  try {
    load = startLoad({ mode: 'mqtt-flood', host: '127.0.0.1', port: server.mqttPort!, fleetKey: keys.fleetKey, publishers, qos, framesPerWrite: 256, subscriber: false });
    await load.next('ready', 60_000);
    // Counted like WebSocket ingest: by the gateway's acks (it writes them to MQTT devices as QoS 0
    // PUBLISH on their commands topic), with the gateway's timestamps.
    return await sample(load, server.child.pid, (l) => server.count(l), PLAN);
  } finally {
    await server.stop();
    await load?.stop();
  }
}

export async function mqttMosquitto(keys: BenchKeys, publishers: number, qos: 0 | 1): Promise<Sampled> {
  const broker = await startMosquitto({ core: SERVER_CORE, tempPrefix: 'bench-' });
  let load: Child | undefined;
  try {
    const l = startLoad({ mode: 'mqtt-flood', host: '127.0.0.1', port: broker.port, fleetKey: keys.fleetKey, publishers, qos, framesPerWrite: 256, subscriber: true });
    load = l;
    await l.next('ready', 60_000);
    return await sample(l, broker.pid, (s) => ({ t: s.at, frames: s.delivered, readings: s.delivered * READINGS_PER_FRAME }), PLAN);
  } finally {
    await broker.stop(3000);
    await load?.stop();
  }
}
