/**
 * One round of one scaling measurement: start the system (systems.ts), connect the fleet and the
 * two viewers (loadgen.ts), let it warm up, then take the gateway's CPU time (every process of it,
 * summed), the broker's, the generator's and everyone else's over a window, and the frames the
 * gateway acked in that same window, counted by the flush time each ack carries (ack-timeline.ts).
 * Fixed load: CPU per frame. Flood: the rate (saturation).
 */
import { join } from 'node:path';
import { deviceId } from '../load/devices.js';
import { framesPerWrite } from '../measure/ingest.js';
import { allProcessCpu, contextSwitches, cpuSeconds, otherCpu, sleep, start, type Child } from '../procs.js';
import { HERE, type BenchKeys } from '../servers.js';
import { ackRates } from './ack-timeline.js';
import { cpuPerMillion, median } from './figures.js';
import type { ScaleLoadConfig, ScaleLoadStats } from './protocol.js';
import { startSystem, type RunningSystem, type SystemSpec } from './systems.js';

/** The fleet of every scaling measurement. */
export const SCALE_DEVICES = 1000;
/**
 * The fixed loads: 10 and 30 frames/s per device (the second is issue 12's own example). Both well
 * below saturation for one gateway process on this project's 2-core machine (`--workers 1` used
 * about 0.2 and 0.4 cores at them here), so what is compared is the cost of a frame, not who
 * queues less. Two loads, because a process costs a part that does not grow with its frames (it
 * wakes up for every burst of messages, however few): the ratio depends on the load.
 */
export const FIXED_RATES = [10_000, 30_000] as const;

export interface Plan {
  warmupMs: number;
  windowMs: number;
  windows: number;
}

/**
 * Flow control of the flood: more slack than the ingest rows' (../measure/ingest.ts). The window
 * follows the acked rate, and the rate is the window over the ack round trip (at least the 50 ms
 * ack interval): when a shared machine stretches that round trip past the backlog, the two feed
 * each other down and the gateway idles, so the window is 250 ms of throughput, at least 32 Ki
 * frames (2 MB of frames in flight).
 */
export const FLOOD_WINDOW = { window: 65_536, backlogMs: 250, minWindow: 32_768 } as const;

export const FIXED_PLAN: Plan = { warmupMs: 1500, windowMs: 3500, windows: 1 };
export const SATURATION_PLAN: Plan = { warmupMs: 1500, windowMs: 2000, windows: 2 };

/** One round of one configuration. */
export interface ScaleRun {
  kind: 'scale';
  test: 'fixed' | 'saturation';
  system: SystemSpec;
  /** The fixed load's frames/s offered (fixed test only). */
  fixedRate?: number;
  round: number;
  /** Frames/s the gateway acked (median window), and what the generator wrote. */
  rate: number;
  offered: number;
  /**
   * Cores used over the window: the gateway's processes summed, each of them (with its main
   * thread's context switches per second: how often its event loop went to sleep and woke), the
   * broker, the generator, the rest of the machine.
   */
  gatewayCpu: number;
  processes: { name: string; cores: number; wakeupsPerSec: number }[];
  brokerCpu?: number;
  loadCpu: number;
  otherCpu: number;
  /** CPU-seconds of the gateway per million frames. */
  cpuPerMillion: number;
  viewerBytesPerSec: number;
  fleetViewMessagesPerSec: number;
  devicePageDeviceMessagesPerSec: number;
  /** Device and viewer connections the gateway closed by the end (should be 0). */
  closed: number;
  connectMs: number;
}

export function isScaleRun(r: object): r is ScaleRun {
  return (r as Partial<ScaleRun>).kind === 'scale';
}

function startScaleLoad(config: ScaleLoadConfig): Child {
  return start('scale-loadgen', process.execPath, [join(HERE, 'scale', 'loadgen.js'), JSON.stringify(config)], { ipc: true });
}

async function stats(load: Child): Promise<ScaleLoadStats> {
  load.send({ cmd: 'stats' });
  // The scale generator's stats carry more than LoadStats (protocol.ts).
  return (await load.next('stats', 10_000)).stats as ScaleLoadStats;
}

/** BENCH_DEBUG=1: where a round's time goes, on stderr. */
const debug = (what: string, since: number) => {
  if (process.env.BENCH_DEBUG) process.stderr.write(`\n  scale: ${what} ${Math.round(performance.now() - since)} ms`);
};

export async function measureRound(test: ScaleRun['test'], spec: SystemSpec, round: number, keys: BenchKeys, fixedRate: number = FIXED_RATES[0]): Promise<ScaleRun> {
  let t = performance.now();
  const sys = await startSystem(spec, keys);
  debug('system started in', t);
  let load: Child | undefined;
  try {
    const ports = sys.devicePorts;
    const common = {
      host: '127.0.0.1',
      devicePorts: ports,
      fleetKey: keys.fleetKey,
      devices: SCALE_DEVICES,
      // The device page shows a device of the first instance from the second, where there is one.
      viewers: { operatorToken: keys.operatorToken, fleetPort: ports[0]!, devicePagePort: ports[1 % ports.length]!, deviceId: deviceId(0) },
    };
    const config: ScaleLoadConfig =
      test === 'fixed'
        ? { ...common, mode: 'paced', ratePerSec: fixedRate }
        : { ...common, mode: 'flood', framesPerWrite: framesPerWrite(SCALE_DEVICES), ...FLOOD_WINDOW };
    load = startScaleLoad(config);
    t = performance.now();
    const ready = await load.next('ready', 60_000);
    debug('fleet and viewers connected in', t);
    t = performance.now();
    const s = await sampleSystem(load, sys, test === 'fixed' ? FIXED_PLAN : SATURATION_PLAN);
    debug('sampled in', t);
    return { kind: 'scale', test, system: spec, round, ...(test === 'fixed' ? { fixedRate } : {}), connectMs: ready.connectMs, ...s };
  } finally {
    t = performance.now();
    // The gateway first, so the TIME_WAIT sockets are on its side, not the generator's ports.
    await sys.stop();
    await load?.stop();
    debug('stopped in', t);
  }
}

type Sampled = Omit<ScaleRun, 'kind' | 'test' | 'system' | 'round' | 'fixedRate' | 'connectMs'>;

/** How long, at most, to wait after a window for its acks to arrive (a loaded machine delays them). */
const ACK_SETTLE_MS = 5000;

/**
 * Starts the load, waits out the warm-up, then takes CPU times at the ends of the windows and
 * notes those instants; once acks stamped after the last one have arrived, counts from the ack
 * timeline the frames acked in each window (ack-timeline.ts). The load runs on until then.
 */
async function sampleSystem(load: Child, sys: RunningSystem, plan: Plan): Promise<Sampled> {
  load.send({ cmd: 'start' });
  await sleep(plan.warmupMs);
  const procs = sys.gatewayProcesses();
  const ours = [...procs.map((p) => p.pid), ...(sys.broker ? [sys.broker.pid] : []), load.pid, process.pid];
  const cpu = () => ({ t: performance.now(), procs: procs.map((p) => cpuSeconds(p.pid) || 0), switches: procs.map((p) => contextSwitches(p.pid) || 0), broker: sys.broker ? cpuSeconds(sys.broker.pid) : 0, load: cpuSeconds(load.pid), all: allProcessCpu() });
  const first = await stats(load);
  const cpu0 = cpu();
  const instants = [Date.now()];
  for (let i = 0; i < plan.windows; i++) {
    await sleep(plan.windowMs - (Date.now() - instants[i]!));
    instants.push(Date.now());
  }
  const cpu1 = cpu();
  const end = instants[instants.length - 1]!;
  // What the generator wrote and the viewers got over the same span as the CPU.
  const atEnd = await stats(load);
  let last = atEnd;
  const settle = performance.now() + ACK_SETTLE_MS;
  while (!ackedAfter(last, end) && performance.now() < settle) {
    await sleep(200);
    last = await stats(load);
  }
  load.send({ cmd: 'stop' });
  await load.next('stats', 10_000).catch(() => undefined);
  const rates = ackRates(last.ackTimeline, instants);
  if (!ackedAfter(last, end) || !rates.every((r) => r > 0)) {
    throw new Error(
      `the gateway acked nothing in a window or not after it within ${ACK_SETTLE_MS / 1000} s (window rates ${rates.map((r) => Math.round(r)).join(', ')} frames/s; ` +
        `generator: ${last.sent} frames written, ${last.acked} acked in all, ${last.closed} device connections closed by the gateway)`,
    );
  }
  const span = (cpu1.t - cpu0.t) / 1000;
  const processes = procs.map((p, i) => ({ name: p.name, cores: (cpu1.procs[i]! - cpu0.procs[i]!) / span, wakeupsPerSec: (cpu1.switches[i]! - cpu0.switches[i]!) / span }));
  const gatewayCpu = processes.reduce((a, p) => a + p.cores, 0);
  const rate = median(rates);
  const genSpan = (atEnd.at - first.at) / 1000;
  const perSec = (f: (s: ScaleLoadStats) => number) => (f(atEnd) - f(first)) / genSpan;
  return {
    rate,
    offered: perSec((s) => s.sent),
    gatewayCpu,
    processes,
    ...(sys.broker ? { brokerCpu: (cpu1.broker - cpu0.broker) / span } : {}),
    loadCpu: (cpu1.load - cpu0.load) / span,
    otherCpu: otherCpu(cpu0.all, cpu1.all, ours, span),
    // The CPU of the whole span over the frames of the whole span (not the median window's).
    cpuPerMillion: cpuPerMillion(gatewayCpu, ackRates(last.ackTimeline, [instants[0]!, end])[0]!),
    viewerBytesPerSec: perSec((s) => s.dashboardBytes),
    fleetViewMessagesPerSec: perSec((s) => s.fleetViewMessages),
    devicePageDeviceMessagesPerSec: perSec((s) => s.devicePageDeviceMessages),
    closed: last.closed + last.viewersClosed,
  };
}

/** Acks stamped well after `t` have arrived: those of flushes up to `t` have too (all but a straggler). */
function ackedAfter(s: ScaleLoadStats, t: number): boolean {
  return s.ackTimeline.some(([flush]) => flush > t + 250);
}
