/**
 * The scaling section's rows of BENCHMARKS.md: CPU per frame of each configuration at the fixed
 * load against `--workers 1` (the targets: `--workers 2` and a cluster of 3 each ≤ 1.15× of it),
 * and the saturation table. Every round is kept (bench.ts hands over all of them), so the rows show
 * the median and each round.
 */
import { si, type Row } from '../report.js';
import { READINGS_PER_FRAME } from '../frames.js';
import { cpuPerMillion, fleetSlices, keptUp, maxWorkers, median, roundRatios, saturationWorkerCounts } from './figures.js';
import { FIXED_PLAN, FIXED_RATES, SATURATION_PLAN, SCALE_DEVICES, type ScaleRun } from './measure.js';
import { CLUSTER_INSTANCES, fixedId, fixedSystems, ROUNDS, saturationId } from './steps.js';
import { describeSystem, type SystemSpec } from './systems.js';

/** The issue's targets: CPU per frame at most this times `--workers 1`'s. */
export const CPU_TARGET = 1.15;
/** Saturation growth the issue asks of a machine with the cores for it (n ≤ 8). */
export const GROWTH_TARGET = 0.7;

type Results = ReadonlyMap<string, unknown>;

const n = (x: number) => x.toLocaleString('en-US');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

function runsOf(results: Results, id: string): ScaleRun[] {
  const r = results.get(id);
  return Array.isArray(r) ? (r as ScaleRun[]) : [];
}

const byRound = (runs: ScaleRun[], f: (r: ScaleRun) => number) => new Map(runs.map((r) => [r.round, f(r)]));

function roundDetails(r: ScaleRun): string {
  const wakeups = (p: ScaleRun['processes'][number]) => (Number.isFinite(p.wakeupsPerSec) ? `, ${si(p.wakeupsPerSec)} wakeups/s` : '');
  const procs =
    r.processes.length > 1
      ? ` (${r.processes.map((p) => `${p.name} ${f2(p.cores)}${wakeups(p)}`).join('; ')})`
      : r.processes.length === 1
        ? ` (${wakeups(r.processes[0]!).slice(2)})`
        : '';
  return (
    `round ${r.round}: ${si(r.rate)} frames/s acked of ${si(r.offered)} written; gateway ${f2(r.gatewayCpu)} cores${procs}` +
    (r.brokerCpu !== undefined ? `, Mosquitto ${f2(r.brokerCpu)}` : '') +
    `, generator ${f2(r.loadCpu)}, other processes ${f2(r.otherCpu)}; ` +
    `fleet view ${si(r.fleetViewMessagesPerSec)} msgs/s, device page ${si(r.devicePageDeviceMessagesPerSec)} device msgs/s, viewers ${(r.viewerBytesPerSec / 1e6).toFixed(2)} MB/s` +
    (r.closed > 0 ? `; ${r.closed} connections closed by the gateway` : '') +
    `; ${n(SCALE_DEVICES)} devices connected in ${(r.connectMs / 1000).toFixed(1)} s`
  );
}

function fixedSetup(spec: SystemSpec, rate: number): string {
  const base = `${n(SCALE_DEVICES)} devices, ${n(rate)} frames/s in total (${rate / SCALE_DEVICES} Hz each, one frame of 8 readings per message), one /live client on the fleet view and one on a device page; nothing pinned`;
  if (spec.kind === 'workers') return base;
  const split = fleetSlices(SCALE_DEVICES, spec.instances).map((s) => s.count).join('/');
  return `${base}; the fleet split ${split} over the instances (each device connects to its own), the fleet view on instance 1, the device page on instance 2 showing a device held by instance 1`;
}

export function scaleRows(results: Results, missing: ReadonlyMap<string, string>, cores: number): Row[] {
  const rows: Row[] = [];
  const absent = (id: string) => missing.get(id) ?? 'not measured';
  for (const fixedRate of FIXED_RATES) rows.push(...fixedRows(results, absent, cores, fixedRate));
  rows.push(...saturationRows(results, absent, cores));
  return rows;
}

/** CPU per frame of each configuration at one fixed load, against `--workers 1`'s at that load. */
function fixedRows(results: Results, absent: (id: string) => string, cores: number, fixedRate: number): Row[] {
  const rows: Row[] = [];
  const one: SystemSpec = { kind: 'workers', workers: 1 };
  const ref = runsOf(results, fixedId(one, fixedRate));
  const refCpu = byRound(ref, (r) => r.cpuPerMillion);
  for (const spec of fixedSystems(cores)) {
    const id = fixedId(spec, fixedRate);
    const runs = runsOf(results, id);
    const measurement = `Scale-out: gateway CPU per frame at ${si(fixedRate)} frames/s, ${describeSystem(spec)}`;
    const isTarget = (spec.kind === 'workers' && spec.workers === 2) || spec.kind === 'cluster';
    const target = isTarget ? `≤ ${CPU_TARGET}× \`--workers 1\`` : undefined;
    if (runs.length === 0) {
      rows.push({ measurement, setup: fixedSetup(spec, fixedRate), missing: absent(id), ...(target ? { target } : {}) });
      continue;
    }
    const cpm = median(runs.map((r) => r.cpuPerMillion));
    const rate = median(runs.map((r) => r.rate));
    let result =
      `${f1(cpm)} CPU-s per million frames (${f2(median(runs.map((r) => r.gatewayCpu)))} cores)` +
      (runs.length > 1 ? `; rounds ${runs.map((r) => f1(r.cpuPerMillion)).join(', ')}` : '') +
      (runs.length < ROUNDS ? ` (${runs.length} of ${ROUNDS} rounds measured)` : '');
    if (spec.kind === 'cluster') {
      const broker = median(runs.map((r) => (r.brokerCpu !== undefined ? cpuPerMillion(r.brokerCpu, r.rate) : NaN)));
      result += `; Mosquitto apart: ${f1(broker)} CPU-s per million frames`;
    }
    // The gateway must take what it is given (else it is saturated and the figure not comparable);
    // a generator starved by a busy machine only lowers the rate the figure is taken at.
    const saturated = runs.filter((r) => !keptUp(r.rate, r.offered));
    if (saturated.length > 0) result += `; **the gateway did not keep up** in round ${saturated.map((r) => `${r.round} (acked ${si(r.rate)} of ${si(r.offered)} frames/s written)`).join(', ')}: not below saturation, not comparable`;
    const starved = runs.filter((r) => !keptUp(r.offered, fixedRate));
    if (starved.length > 0) result += `; the generator wrote only ${starved.map((r) => `${si(r.offered)} frames/s in round ${r.round}`).join(', ')} (busy machine)`;
    const row: Row = { measurement, setup: fixedSetup(spec, fixedRate), result, rate, readings: rate * READINGS_PER_FRAME, details: runs.map(roundDetails).join('; ') };
    if (!(spec.kind === 'workers' && spec.workers === 1)) {
      if (ref.length === 0) row.ratio = `\`--workers 1\`: ${absent(fixedId(one, fixedRate))}`;
      else {
        const r = roundRatios(byRound(runs, (x) => x.cpuPerMillion), refCpu);
        row.ratio = `${f2(r.x)}× \`--workers 1\`` + (r.rounds.length > 1 ? ` (rounds: ${r.rounds.map(f2).join(', ')})` : '');
        if (spec.kind === 'cluster') {
          const withBroker = roundRatios(byRound(runs, (x) => cpuPerMillion(x.gatewayCpu + (x.brokerCpu ?? 0), x.rate)), refCpu);
          row.ratio += `; with Mosquitto ${f2(withBroker.x)}×`;
        }
        if (target && Number.isFinite(r.x)) row.met = r.x <= CPU_TARGET ? 'yes' : 'no';
      }
    }
    if (target) row.target = target;
    rows.push(row);
  }
  return rows;
}

/** Saturation throughput for `--workers 1…N`. */
function saturationRows(results: Results, absent: (id: string) => string, cores: number): Row[] {
  const rows: Row[] = [];
  const counts = saturationWorkerCounts(cores);
  const one = runsOf(results, saturationId(1));
  const oneRate = median(one.map((r) => r.rate));
  const satSetup = `${n(SCALE_DEVICES)} devices flooding (64 frames per write, flow-controlled), the same two viewers; nothing pinned; up to N = cores − 1 (at least 2) = ${maxWorkers(cores)} workers on this ${cores}-core machine`;
  for (const w of counts) {
    const id = saturationId(w);
    const runs = runsOf(results, id);
    const measurement = `Scale-out: saturation, \`--workers ${w}\``;
    // Growth needs a core per worker and one for the generator.
    const target = w > 1 && w <= 8 && cores >= w + 1 ? `≥ ${GROWTH_TARGET} × ${w} × \`--workers 1\`` : undefined;
    if (runs.length === 0) {
      rows.push({ measurement, setup: satSetup, missing: absent(id), ...(target ? { target } : {}) });
      continue;
    }
    const rate = median(runs.map((r) => r.rate));
    const gw = median(runs.map((r) => r.gatewayCpu));
    const gen = median(runs.map((r) => r.loadCpu));
    const bound = gen >= 0.9 ? 'generator-bound: the figure is a lower bound' : gw >= 0.9 * w ? 'gateway-bound' : 'neither side used its cores in full (the machine is shared: see other processes)';
    const row: Row = {
      measurement,
      setup: satSetup,
      result: `${bound} (gateway ${f2(gw)} cores, generator ${f2(gen)})`,
      rate,
      readings: rate * READINGS_PER_FRAME,
      details: runs.map(roundDetails).join('; '),
    };
    if (w > 1 && Number.isFinite(oneRate)) {
      const x = rate / oneRate;
      row.ratio = `${f2(x)}× \`--workers 1\` (${f2(x / w)} per worker)`;
      if (target) row.met = x >= GROWTH_TARGET * w ? 'yes' : 'no';
    } else if (w > 1) row.ratio = `\`--workers 1\`: ${absent(saturationId(1))}`;
    if (target) row.target = target;
    else if (w > 1 && cores < w + 1) row.target = `– (growth needs ${w + 1} cores: ${w} workers and the generator)`;
    rows.push(row);
  }
  return rows;
}

export function scaleNotes(cores: number): string[] {
  return [
    `Scale-out (\`npm run bench -- --only scale\`, about 3.5 minutes on 2 cores): the cost of a frame as the gateway spreads over processes, measured only through the CLI (\`--workers\`, \`--cluster-url\`) and the wire, so it measures whatever cluster design the checkout has. ` +
      `Fixed loads: ${n(SCALE_DEVICES)} devices send ${FIXED_RATES.map(n).join(' or ')} frames/s in total, one 64-byte frame of 8 readings per WebSocket message, paced every millisecond; one /live client follows the fleet view (\`fleet\`, \`stats\`) and one a device page (\`fleet\`, \`stats\`, \`device:<id>\`, \`commands\`), as our dashboard subscribes. ` +
      `Each configuration runs ${ROUNDS} times, interleaved (\`--workers 1\`, 2, ${maxWorkers(cores) > 2 ? `${maxWorkers(cores)}, ` : ''}the cluster, then again); each run has a ${FIXED_PLAN.warmupMs / 1000} s warm-up and a ${FIXED_PLAN.windowMs / 1000} s window. ` +
      `Wakeups/s (Details): context switches per second of each process's main thread (/proc/PID/status), about how often its event loop slept and was woken; the generator writes every millisecond, so each process wakes at least about 1,000 times a second whatever its share of the frames. ` +
      `Gateway CPU is user + system time of every gateway process (a \`--workers\` gateway's primary, with the internal backbone, and its workers; each cluster instance) from /proc, summed; the frames are those the gateway acked, counted by the ack timestamps. CPU-s per million frames = cores / acked frames per s × 10⁶. The figure is the median of the rounds; a ratio is the median of the per-round ratios (each round's runs are minutes apart at most). On a busy machine a gateway that gets less CPU does more per event-loop turn (larger acks and live batches), which lowers its CPU per frame: compare rounds with like \`other processes\` (Details).`,
    `Cluster: ${CLUSTER_INSTANCES} gateway processes on this machine with \`--cluster-url\` on one Mosquitto (temp config, anonymous, no persistence), each with its own \`--instance-id\`; the measurement starts when every instance's /readyz answers 200. The fleet is split into contiguous slices, each device connecting to its own instance; the fleet view is on instance 1, the device page on instance 2 and shows a device held by instance 1 (a viewer of a device held elsewhere). The target compares the instances' CPU without the broker; the ratio with Mosquitto's CPU is shown beside it.`,
    `Saturation: \`--workers n\` for n = 1 … N (N = cores − 1, at least 2; every n up to 8, then powers of two, then N), one run each: ${n(SCALE_DEVICES)} devices write 64 frames per write with flow control (at most 250 ms of the gateway's acked throughput, at least 32 Ki frames, in flight beyond its acks) and the same two viewers; ${SATURATION_PLAN.windows} windows of ${SATURATION_PLAN.windowMs / 1000} s after ${SATURATION_PLAN.warmupMs / 1000} s, the median window. The load generator is one Node process: where it uses ≥ 0.9 of a core, the figure is a lower bound. Growth needs one core per worker plus one for the generator, so on a 2-core machine the table shows little.`,
  ];
}

/** The progress line of one round (bench.ts prints it on stderr). */
export function scaleSummary(r: ScaleRun): string {
  return (
    `${describeSystem(r.system)}: ${si(r.rate)} frames/s acked, gateway ${f2(r.gatewayCpu)} cores = ${f1(r.cpuPerMillion)} CPU-s per million frames` +
    (r.brokerCpu !== undefined ? `, Mosquitto ${f2(r.brokerCpu)} cores` : '') +
    `, generator ${f2(r.loadCpu)}, other processes ${f2(r.otherCpu)}, device page ${si(r.devicePageDeviceMessagesPerSec)} device msgs/s`
  );
}
