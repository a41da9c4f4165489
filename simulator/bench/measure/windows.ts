/**
 * How every throughput figure is taken: after a warm-up, the server's count is read at the
 * boundaries of a few consecutive windows, each count with the timestamp of whoever counted (the
 * server itself where it can: see servers.ts); each window gives a rate (count delta / timestamp
 * delta) and the figure is the median window. CPU time of the server and of the generator over the
 * same span shows which one was the limit.
 */
import { join } from 'node:path';
import type { LoadConfig, LoadStats } from '../protocol.js';
import { allProcessCpu, cpuSeconds, descendants, otherCpu, sleep, start, treeCpuSeconds, type Child } from '../procs.js';
import { HERE, LOAD_CORE, type Counts } from '../servers.js';

export interface Sampled {
  /** Every window's rate, in order. */
  rates: number[];
  /** The median rate of each run (one per round when runs are combined). */
  roundRates: number[];
  readingRates: number[];
  /** Median frames/s (or messages/s, points/s) over the windows, and the spread. */
  rate: number;
  min: number;
  max: number;
  readingsRate: number;
  /** Cores used over the windows (1.0 = one core busy all the time). */
  serverCpu: number;
  loadCpu: number;
  /** Cores used meanwhile by processes that are not part of the benchmark (other people's work). */
  otherCpu: number;
  /** What the generator handed to sockets, per second. */
  offered: number;
  /** Client-side deliveries per second (dashboard messages, subscriber messages, stored points). */
  delivered: number;
  dashboardBytesPerSec: number;
  /** Connections the server closed by the end (should be 0). */
  closed: number;
  /** Longest time one count read took (where the count is timed by the request, its precision). */
  slowestReadMs: number;
  /** The generator's flow-control window at the end, in frames (flood runs). */
  window: number;
}

export interface WindowPlan {
  warmupMs: number;
  windowMs: number;
  windows: number;
}

export const DEFAULT_PLAN: WindowPlan = { warmupMs: 2000, windowMs: 2000, windows: 3 };

/** `core` undefined: not pinned (the load shares every core with the server). */
export function startLoad(config: LoadConfig, name = 'loadgen', core: number | undefined = LOAD_CORE): Child {
  return start(name, process.execPath, [join(HERE, 'loadgen.js'), JSON.stringify(config)], { ...(core !== undefined ? { core } : {}), ipc: true });
}

export async function loadStats(load: Child): Promise<LoadStats> {
  load.send({ cmd: 'stats' });
  return (await load.next('stats', 10_000)).stats;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Starts the load (it must have said `ready`), waits out the warm-up, samples, stops the load.
 * A window ends at the first count whose timestamp is `windowMs` after the previous one's; a
 * count that does not move on for 6 windows' time fails the measurement.
 */
export async function sample(load: Child, serverPid: number, count: (l: LoadStats) => Counts | Promise<Counts>, plan: WindowPlan = DEFAULT_PLAN): Promise<Sampled> {
  load.send({ cmd: 'start' });
  await sleep(plan.warmupMs);
  let slowestRead = 0;
  const read = async () => {
    const t0 = performance.now();
    const l = await loadStats(load);
    const c = await count(l);
    slowestRead = Math.max(slowestRead, performance.now() - t0);
    return { c, l };
  };
  // A count that has not started yet (the gateway acks after its first loop turn) is no boundary.
  let first = await read();
  for (let i = 0; first.c.t === 0 && i < 50; i++) {
    await sleep(200);
    first = await read();
  }
  // The server's CPU includes its children (gateway workers).
  const serverPids = [serverPid, ...descendants(serverPid)];
  const cpu0 = { s: treeCpuSeconds(serverPid), l: cpuSeconds(load.pid), t: performance.now(), all: allProcessCpu() };
  const marks = [first];
  for (let i = 0; i < plan.windows; i++) {
    const prev = marks[marks.length - 1]!;
    const deadline = performance.now() + 6 * plan.windowMs;
    await sleep(plan.windowMs - 100);
    for (;;) {
      const m = await read();
      if (m.c.t - prev.c.t >= plan.windowMs && m.c.frames >= prev.c.frames) {
        marks.push(m);
        break;
      }
      if (performance.now() > deadline) {
        throw new Error(
          `the server's count did not move on for ${(6 * plan.windowMs) / 1000} s (last at ${m.c.t ? new Date(m.c.t).toISOString() : 'never'}, ${m.c.frames} frames; ` +
            `generator: ${m.l.sent} frames written, ${m.l.downstreamBytes} bytes back, ${m.l.closed} connections closed by the server)`,
        );
      }
      await sleep(100);
    }
  }
  const cpu1 = { s: treeCpuSeconds(serverPid), l: cpuSeconds(load.pid), t: performance.now(), all: allProcessCpu() };
  load.send({ cmd: 'stop' });
  await load.next('stats', 10_000).catch(() => undefined);
  if (process.env.BENCH_DEBUG) for (const m of marks) process.stderr.write(`mark t=${m.c.t} frames=${m.c.frames} at=${m.l.at} sent=${m.l.sent}\n`);
  const rates: number[] = [];
  const readingRates: number[] = [];
  for (let i = 1; i < marks.length; i++) {
    const dt = (marks[i]!.c.t - marks[i - 1]!.c.t) / 1000;
    rates.push((marks[i]!.c.frames - marks[i - 1]!.c.frames) / dt);
    readingRates.push((marks[i]!.c.readings - marks[i - 1]!.c.readings) / dt);
  }
  const last = marks[marks.length - 1]!;
  const span = (last.l.at - first.l.at) / 1000;
  const cpuSpan = (cpu1.t - cpu0.t) / 1000;
  return {
    rates,
    readingRates,
    roundRates: [median(rates)],
    rate: median(rates),
    min: Math.min(...rates),
    max: Math.max(...rates),
    readingsRate: median(readingRates),
    serverCpu: (cpu1.s - cpu0.s) / cpuSpan,
    loadCpu: (cpu1.l - cpu0.l) / cpuSpan,
    otherCpu: otherCpu(cpu0.all, cpu1.all, [...serverPids, load.pid, process.pid], cpuSpan),
    offered: (last.l.sent - first.l.sent) / span,
    delivered: (last.l.delivered - first.l.delivered) / span,
    dashboardBytesPerSec: (last.l.dashboardBytes - first.l.dashboardBytes) / span,
    closed: last.l.closed,
    slowestReadMs: slowestRead,
    window: last.l.window ?? 0,
  };
}

/**
 * Several runs of one measurement (interleaved with the others, so a slow spell of the machine
 * does not land on one server only) as one: the median over all their windows, CPU and the
 * like averaged, `runs` of them.
 */
export function combine<T extends Sampled>(runs: T[]): T & { runs: number } {
  const first = runs[0]!;
  if (runs.length === 1) return { ...first, runs: 1 };
  const rates = runs.flatMap((r) => r.rates);
  const readingRates = runs.flatMap((r) => r.readingRates);
  const mean = (f: (r: T) => number) => runs.reduce((a, r) => a + f(r), 0) / runs.length;
  return {
    ...first,
    rates,
    readingRates,
    roundRates: runs.map((r) => r.rate),
    rate: median(rates),
    min: Math.min(...rates),
    max: Math.max(...rates),
    readingsRate: median(readingRates),
    serverCpu: mean((r) => r.serverCpu),
    loadCpu: mean((r) => r.loadCpu),
    otherCpu: mean((r) => r.otherCpu),
    offered: mean((r) => r.offered),
    delivered: mean((r) => r.delivered),
    dashboardBytesPerSec: mean((r) => r.dashboardBytesPerSec),
    closed: Math.max(...runs.map((r) => r.closed)),
    slowestReadMs: Math.max(...runs.map((r) => r.slowestReadMs)),
    window: mean((r) => r.window),
    runs: runs.length,
  };
}
