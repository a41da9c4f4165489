/**
 * The servers under test, each a child process pinned to the server core, with how to read its
 * ingest count with the server's own timestamp: the bench servers write theirs from the message
 * handler to a file (hot-counter.ts); the gateway's is what it acks to its devices, with
 * the ack's timestamp (load/acks.ts). Neither needs the server's event loop to answer a request,
 * which under a flood it does seconds late.
 */
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FRAME_BYTES, READINGS_PER_FRAME, WS_FRAME_HEADER } from './frames.js';
import type { DashboardSpec, LoadStats } from './protocol.js';
import { freePort, tempDir } from '../services/index.js';
import { httpGet, start, type Child } from './procs.js';
import { parseCounterFile } from './hot-counter.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
/** BENCH_GATEWAY_CLI: another build's gateway/cli.js, to compare two builds under the same load. */
export const GATEWAY_CLI = process.env.BENCH_GATEWAY_CLI ?? join(HERE, '../../gateway/cli.js');
export const SERVER_CORE = 0;
export const LOAD_CORE = 1;

export type ServerKind = 'sink' | 'uws' | 'ws' | 'gateway';

/** Frames and readings ingested by time `t` (ms since epoch, on the clock of whoever counted). */
export interface Counts {
  t: number;
  frames: number;
  readings: number;
}

export interface RunningServer {
  kind: ServerKind;
  child: Child;
  port: number;
  mqttPort?: number;
  dashboard?: DashboardSpec;
  /** Where the generator reads how much the server has taken, for its flow control. */
  consumed: { file: string; divisor: number } | 'acks';
  /** The server's ingest count, with its own timestamp; `load` is the generator's latest stats. */
  count(load: LoadStats): Counts;
  /** Gateway only: gateway_frames_total from /metrics, timed by the request (when its loop answers at once). */
  metricsCount(): Promise<Counts & { answerMs: number }>;
  stop(): Promise<void>;
}

export interface BenchKeys {
  fleetKey: string;
  operatorToken: string;
}

/** `pinned: false` lets the server use every core (a gateway with --workers). */
export async function startServer(kind: ServerKind, keys: BenchKeys, gatewayArgs: string[] = [], pinned = true): Promise<RunningServer> {
  if (kind === 'gateway') return startGateway(keys, gatewayArgs, pinned);
  const file = { sink: 'tcp-sink.js', uws: 'uws-count.js', ws: 'ws-baseline.js' }[kind];
  const args = kind === 'ws' ? [keys.fleetKey, '0'] : ['0'];
  const dir = tempDir(`bench-${kind}-`);
  const counterFile = join(dir, 'count');
  const child = start(kind, process.execPath, [join(HERE, 'servers', file), ...args], { core: SERVER_CORE, env: { BENCH_COUNTER_FILE: counterFile } });
  const stop = async () => {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const m = await child.waitLine(/BENCH_READY (\{.*\})/, 10_000);
    const port = (JSON.parse(m[1]!) as { port: number }).port;
    const count = (): Counts => {
      const c = parseCounterFile(readFileSync(counterFile, 'utf8'));
      // The sink counts bytes: every framed bench frame is header + 64 bytes.
      const frames = kind === 'sink' ? Math.floor(c.frames / (WS_FRAME_HEADER.length + FRAME_BYTES)) : c.frames;
      return { t: c.t, frames, readings: kind === 'ws' ? c.readings : frames * READINGS_PER_FRAME };
    };
    const metricsCount = () => Promise.reject(new Error(`${kind} has no /metrics`));
    const consumed = { file: counterFile, divisor: kind === 'sink' ? WS_FRAME_HEADER.length + FRAME_BYTES : 1 };
    return { kind, child, port, dashboard: kind === 'ws' ? { kind: 'ws-baseline' } : undefined, consumed, count, metricsCount, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startGateway(keys: BenchKeys, extra: string[], pinned: boolean): Promise<RunningServer> {
  const port = await freePort();
  let mqttPort = await freePort();
  while (mqttPort === port) mqttPort = await freePort();
  const dataDir = tempDir('bench-gateway-');
  const args = [
    GATEWAY_CLI,
    '--host', '127.0.0.1',
    '--port', String(port),
    '--mqtt-port', String(mqttPort),
    '--fleet-key', keys.fleetKey,
    '--operator-token', keys.operatorToken,
    '--data-dir', dataDir,
    '--log-level', 'warn',
    '--max-devices', '20000',
    '--idle-timeout', '120',
    ...extra,
  ];
  // BENCH_PROFILE_DIR: the gateway writes a V8 CPU profile there when it exits (for finding hot spots).
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  // BENCH_GATEWAY_NODE_FLAGS: Node/V8 flags for the gateway process alone (e.g. to compare GC settings).
  const flags = process.env.BENCH_GATEWAY_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const child = start('gateway', process.execPath, [...flags, ...profile, ...args], pinned ? { core: SERVER_CORE } : {});
  try {
    await child.waitLine(/gateway listening on/, 15_000);
  } catch (err) {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    kind: 'gateway',
    child,
    port,
    mqttPort,
    dashboard: { kind: 'live', operatorToken: keys.operatorToken },
    consumed: 'acks',
    // Every bench frame has 8 readings; /metrics (gateway_readings_total) agrees when the loop has time to answer.
    count: (l) => ({ t: l.ackedAt, frames: l.acked, readings: l.acked * READINGS_PER_FRAME }),
    metricsCount: async () => {
      const t0 = Date.now();
      const text = await httpGet(port, '/metrics', { authorization: `Bearer ${keys.operatorToken}` }, 10_000);
      const t1 = Date.now();
      return { t: (t0 + t1) / 2, frames: metric(text, 'gateway_frames_total'), readings: metric(text, 'gateway_readings_total'), answerMs: t1 - t0 };
    },
    stop: async () => {
      await child.stop(5000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A metric's value from Prometheus text. */
export function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  if (!m) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}
