/**
 * Device → dashboard latency and server CPU at a fixed paced load (one frame per write, spread
 * evenly over the devices), the dashboard in the generator's process so both ends read one clock.
 * Servers: the gateway (its /live client follows a user's view or every device), the `ws` baseline,
 * the count-only uWS server (no dashboard: CPU only) and Mosquitto (MQTT devices publishing QoS 1,
 * one subscriber to every device's telemetry as the dashboard).
 */
import type { LatencySummary } from '../load/latency.js';
import type { DashboardSpec, LoadConfig, LoadStats } from '../protocol.js';
import { allProcessCpu, cpuSeconds, otherCpu, sleep, type Child } from '../procs.js';
import { SERVER_CORE, startServer, type BenchKeys, type Counts, type ServerKind } from '../servers.js';
import { startMosquitto } from '../../services/index.js';
import { loadStats, startLoad } from './windows.js';

export interface LatencyOptions {
  kind: ServerKind | 'mosquitto';
  /** Gateway: what its dashboard client follows (default: every device). */
  view?: DashboardSpec['view'];
  keys: BenchKeys;
  devices: number;
  ratePerSec: number;
  warmupMs: number;
  windowMs: number;
  gatewayArgs?: string[];
}

export interface LatencyResult extends LatencySummary {
  /** Server-side ingest rate over the window (the load must have been taken in full). */
  ingestRate: number;
  readingsRate: number;
  sentInWindow: number;
  lagTicks: number;
  unknown: number;
  /** Cores used over the window. */
  serverCpu: number;
  loadCpu: number;
  /** Cores used by processes outside the benchmark. */
  otherCpu: number;
  /** Device connections the server closed by the end of the window (should be 0). */
  closed: number;
}

/** A server under paced load: its pid, what the generator connects to, and its ingest count. */
interface PacedServer {
  pid: number;
  config: LoadConfig;
  count(load: LoadStats): Counts | Promise<Counts>;
  stop(): Promise<void>;
}

async function pacedServer(o: LatencyOptions): Promise<PacedServer> {
  const paced = { host: '127.0.0.1', fleetKey: o.keys.fleetKey, devices: o.devices, ratePerSec: o.ratePerSec, warmupMs: o.warmupMs, windowMs: o.windowMs };
  if (o.kind === 'mosquitto') {
    const broker = await startMosquitto({ core: SERVER_CORE, tempPrefix: 'bench-' });
    return {
      pid: broker.pid,
      config: { mode: 'mqtt-paced', port: broker.port, ...paced },
      // Counted by the subscriber: what the broker delivered, on the generator's clock.
      count: (l) => ({ t: l.at, frames: l.delivered, readings: l.delivered * 8 }),
      stop: () => broker.stop(3000),
    };
  }
  const server = await startServer(o.kind, o.keys, o.gatewayArgs);
  if (o.kind === 'sink') {
    await server.stop();
    throw new Error('the sink takes no paced load');
  }
  const dashboard = server.dashboard && { ...server.dashboard, ...(o.view ? { view: o.view } : {}) };
  return {
    pid: server.child.pid,
    config: { mode: 'ws-paced', port: server.port, ...paced, ...(dashboard ? { dashboard } : {}) },
    // Paced, the gateway's loop answers /metrics at once: its frame counter needs no acks (which are
    // stretched under load, so they would make the count lag by up to --ack-max-delay).
    count: (l) => (o.kind === 'gateway' ? server.metricsCount() : server.count(l)),
    stop: () => server.stop(),
  };
}

export async function latency(o: LatencyOptions): Promise<LatencyResult> {
  const server = await pacedServer(o);
  let load: Child | undefined;
  try {
    load = startLoad(server.config);
    await load.next('ready', 60_000);
    load.send({ cmd: 'start' });
    await sleep(o.warmupMs);
    // Counts that come with acks or deliveries: wait (bounded) for the first ones.
    let c0 = await server.count(await loadStats(load));
    for (let i = 0; c0.t === 0 && i < 25; i++) {
      await sleep(200);
      c0 = await server.count(await loadStats(load));
    }
    const t0 = performance.now();
    const cpu0 = { s: cpuSeconds(server.pid), l: cpuSeconds(load.pid), all: allProcessCpu() };
    await sleep(o.windowMs - (performance.now() - t0));
    const s1 = await loadStats(load);
    const c1 = await server.count(s1);
    const span = (performance.now() - t0) / 1000;
    const serverCpu = (cpuSeconds(server.pid) - cpu0.s) / span;
    const loadCpu = (cpuSeconds(load.pid) - cpu0.l) / span;
    const others = otherCpu(cpu0.all, allProcessCpu(), [server.pid, load.pid, process.pid], span);
    const dt = (c1.t - c0.t) / 1000;
    const r = await load.next('latency', 10_000);
    return {
      ...r.latency,
      ingestRate: (c1.frames - c0.frames) / dt,
      readingsRate: (c1.readings - c0.readings) / dt,
      sentInWindow: r.sentInWindow,
      lagTicks: r.lagTicks,
      unknown: r.unknown,
      serverCpu,
      loadCpu,
      otherCpu: others,
      closed: s1.closed,
    };
  } finally {
    await server.stop();
    await load?.stop();
  }
}
