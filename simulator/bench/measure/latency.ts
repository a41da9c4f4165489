/**
 * Device → dashboard latency at a fixed load: 1,000 devices sending 50,000 frames/s in total
 * (50 frames/s each, one frame per write), the dashboard in the generator's process so both ends
 * read one clock.
 */
import type { LatencySummary } from '../load/latency.js';
import { allProcessCpu, cpuSeconds, otherCpu, sleep, type Child } from '../procs.js';
import { startServer, type BenchKeys, type ServerKind } from '../servers.js';
import { loadStats, startLoad } from './windows.js';

export interface LatencyOptions {
  kind: ServerKind;
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
}

export async function latency(o: LatencyOptions): Promise<LatencyResult> {
  const server = await startServer(o.kind, o.keys, o.gatewayArgs);
  let load: Child | undefined;
  try {
    if (!server.dashboard) throw new Error(`${o.kind} has no dashboard to measure latency to`);
    load = startLoad({
      mode: 'ws-paced',
      host: '127.0.0.1',
      port: server.port,
      fleetKey: o.keys.fleetKey,
      devices: o.devices,
      ratePerSec: o.ratePerSec,
      warmupMs: o.warmupMs,
      windowMs: o.windowMs,
      dashboard: server.dashboard,
    });
    await load.next('ready', 60_000);
    load.send({ cmd: 'start' });
    await sleep(o.warmupMs);
    // The gateway's count comes with its acks: wait (bounded) for the first ones.
    let c0 = server.count(await loadStats(load));
    for (let i = 0; c0.t === 0 && i < 25; i++) {
      await sleep(200);
      c0 = server.count(await loadStats(load));
    }
    const t0 = performance.now();
    const cpu0 = { s: cpuSeconds(server.child.pid), l: cpuSeconds(load.pid), all: allProcessCpu() };
    await sleep(o.windowMs - (performance.now() - t0));
    const c1 = server.count(await loadStats(load));
    const span = (performance.now() - t0) / 1000;
    const serverCpu = (cpuSeconds(server.child.pid) - cpu0.s) / span;
    const loadCpu = (cpuSeconds(load.pid) - cpu0.l) / span;
    const others = otherCpu(cpu0.all, allProcessCpu(), [server.child.pid, load.pid, process.pid], span);
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
    };
  } finally {
    await server.stop();
    await load?.stop();
  }
}
