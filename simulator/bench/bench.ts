#!/usr/bin/env node
/**
 * The benchmark program (`npm run bench`, entry of simulator/bench/): the gateway side by side with
 * the obvious alternatives, in one run, on this machine. Every server is a child process started,
 * measured and stopped (by PID) in turn, pinned to core 0; the load generator is another child
 * pinned to core 1. Prints the results as markdown and writes them to BENCHMARKS.md at the repo
 * root. Flags: see USAGE.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ingest, type IngestResult } from './measure/ingest.js';
import { latency, type LatencyResult } from './measure/latency.js';
import { memoryPerConnection, type MemoryResult } from './measure/memory.js';
import { jsonIngest } from './measure/json.js';
import { mqttGateway, mqttMosquitto } from './measure/mqtt.js';
import { adapterDrain, rawLineProtocol } from './measure/storage.js';
import { combine, type Sampled, type WindowPlan } from './measure/windows.js';
import { findProgram, hasTaskset } from '../services/index.js';
import { coreSpeeds, killAll } from './procs.js';
import { buildRows, notes, WORKERS_DEVICES } from './rows.js';
import { buildAlarmRows } from './rows-alarms.js';
import { ingestAlarms } from './measure/alarms.js';
import { BIG_FLEET_DEVICES, BIG_FLEET_KINDS, BIG_FLEET_RATE, bigFleetId, bigFleetWhyNot, buildFleetRows, FLEET_DEVICES, FLEET_RATES, FLEET_WINDOW_MS, fleetId, fleetKinds } from './rows-fleet.js';
import { machine, render } from './report.js';
import { HERE, type BenchKeys } from './servers.js';
import { isScaleRun, type ScaleRun } from './scale/measure.js';
import { scaleNotes, scaleRows, scaleSummary } from './scale/rows.js';
import { scaleSteps } from './scale/steps.js';
import { floorNote, floorRows, floorSteps, isFloorRun, type FloorRun } from './scale/floor.js';

const ROOT = join(HERE, '../../..');
/**
 * The whole run must stay under 13 minutes (the headline sweep to past saturation and the scaling
 * section at two loads take about 11); steps that would end past this are skipped.
 */
const BUDGET_MS = 12 * 60_000;

export type Result = IngestResult | LatencyResult | MemoryResult | Sampled | ScaleRun | FloorRun;

interface Step {
  /** Steps with the same id are rounds of one measurement (combined by measure/windows.ts combine()). */
  id: string;
  /** Rough seconds it takes, for the time budget. */
  estimateS: number;
  /** Why it cannot run here, if it cannot. */
  unavailable?: () => string | undefined;
  run: () => Promise<Result>;
}

const keys: BenchKeys = { fleetKey: randomBytes(16).toString('hex'), operatorToken: randomBytes(16).toString('hex') };
/** The headline (issue 14): paced, one frame per message; the rate is set per step. */
const FLEET = { devices: FLEET_DEVICES, warmupMs: 2000, windowMs: FLEET_WINDOW_MS };
/** Ingest: one round of a 1.5 s warm-up and two 2 s windows (one round: the headline rows took the time). */
const INGEST_PLAN: WindowPlan = { warmupMs: 1500, windowMs: 2000, windows: 2 };
const ROUNDS = 1;
const noMosquitto = () => (findProgram('mosquitto') ? undefined : 'not measured: mosquitto is not installed (Debian package mosquitto)');
const noInflux = () => (findProgram('influxd') ? undefined : 'not measured: influxd is not installed (Debian package influxdb)');

const STEPS: Step[] = [
  // The headline first: the realistic shape, every server under the same paced load.
  ...FLEET_RATES.flatMap((ratePerSec) =>
    fleetKinds(ratePerSec).map(
      (kind): Step => ({
        id: fleetId(kind, ratePerSec),
        estimateS: 14,
        ...(kind === 'mosquitto' ? { unavailable: noMosquitto } : {}),
        run: () => latency({ kind, keys, ...FLEET, ratePerSec, ...(kind === 'gateway' ? { view: 'page' as const } : {}) }),
      }),
    ),
  ),
  { id: fleetId('gateway-all', FLEET_RATES[0]), estimateS: 14, run: () => latency({ kind: 'gateway', keys, ...FLEET, ratePerSec: FLEET_RATES[0], view: 'all' }) },
  // The larger fleet at 1 Hz each, where the open-file limit allows (rows-fleet.ts says what it needs).
  ...BIG_FLEET_KINDS.map(
    (kind): Step => ({
      id: bigFleetId(kind),
      estimateS: 45,
      unavailable: bigFleetWhyNot,
      run: () => latency({ kind, keys, ...FLEET, devices: BIG_FLEET_DEVICES, ratePerSec: BIG_FLEET_RATE, ...(kind === 'gateway' ? { view: 'page' as const } : {}) }),
    }),
  ),
  ...Array.from({ length: ROUNDS }, () =>
    ([100, 10_000] as const).flatMap((devices) =>
      (['sink', 'uws', 'ws', 'gateway'] as const).map(
        (kind): Step => ({ id: `ingest-${kind}-${devices}`, estimateS: devices > 1000 ? 12 : 8, run: () => ingest({ kind, devices, keys, plan: INGEST_PLAN }) }),
      ),
    ),
  ).flat(),
  { id: 'memory-gateway', estimateS: 14, run: () => memoryPerConnection('gateway', keys, 10_000) },
  { id: 'memory-ws', estimateS: 14, run: () => memoryPerConnection('ws', keys, 10_000) },
  { id: 'memory-uws', estimateS: 14, run: () => memoryPerConnection('uws', keys, 10_000) },
  ...([0, 1] as const).flatMap((qos): Step[] => [
    { id: `mqtt-gateway-qos${qos}`, estimateS: 10, run: () => mqttGateway(keys, 100, qos) },
    { id: `mqtt-mosquitto-qos${qos}`, estimateS: 10, unavailable: noMosquitto, run: () => mqttMosquitto(keys, 100, qos) },
  ]),
  { id: 'json-mqtt', estimateS: 10, run: () => jsonIngest(keys, 'mqtt') },
  { id: 'json-http', estimateS: 10, run: () => jsonIngest(keys, 'http') },
  { id: 'storage-raw', estimateS: 16, unavailable: noInflux, run: () => rawLineProtocol() },
  { id: 'storage-adapter', estimateS: 16, unavailable: noInflux, run: () => adapterDrain() },
  // --workers 2 against 1 under the same load, interleaved; nothing pinned, so the generator
  // competes with the workers for the two cores.
  ...Array.from({ length: ROUNDS }, () =>
    ([1, 2] as const).map(
      (n): Step => ({ id: `workers-${n}`, estimateS: 10, run: () => ingest({ kind: 'gateway', devices: WORKERS_DEVICES, keys, plan: INGEST_PLAN, gatewayArgs: ['--workers', String(n)], unpinned: true }) }),
    ),
  ).flat(),
  // The scaling section (scale/): CPU per frame as the gateway spreads over processes, saturation by workers.
  ...scaleSteps(keys),
  // Alarm rules on against off, interleaved rounds (rows-alarms.ts takes the ratio per round); last,
  // so they never push the rows above out of the time budget.
  ...Array.from({ length: 2 }, () =>
    ([false, true] as const).map((on): Step => ({ id: `alarms-${on ? 'on' : 'off'}`, estimateS: 12, run: () => ingestAlarms(on, keys, INGEST_PLAN) })),
  ).flat(),
  // The per-process floor: an idle gateway's CPU (last: the budget skips it before anything else).
  ...floorSteps(keys),
];

const USAGE = `Usage: npm run bench -- [--only ID[,ID…]] [--write] [--out FILE]

Measures the gateway against a \`ws\` server, a count-only uWS server, Mosquitto and raw InfluxDB
writes (about 11 minutes, both cores). Prints markdown on stdout, progress on stderr.

  --only ID[,ID…]  run only the steps whose id is or starts with one of these (BENCHMARKS.md is
                   then not written unless --write or --out)
  --write          write BENCHMARKS.md even with --only
  --out FILE       write the report to FILE instead of BENCHMARKS.md
  --help           this text

\`--only scale\` runs the scaling section alone (\`--workers\` and a 3-instance cluster at two loads, about 3.5 minutes).
\`--only floor\` measures an idle gateway's CPU (1,000 silent devices, two viewers, 20 s; about 90 s).

Step ids: ${[...new Set(STEPS.map((s) => s.id))].join(', ')}

BENCH_PROFILE_DIR=DIR writes the gateway's V8 CPU profile there.
BENCH_GATEWAY_CLI=FILE runs that gateway/cli.js (another build) instead of this one's.
The ${BIG_FLEET_DEVICES.toLocaleString('en-US')}-device rows (${BIG_FLEET_KINDS.map(bigFleetId).join(', ')}) need that many open files
and more (\`ulimit -n\`); BENCH_BIG_FLEET=N runs them with N devices instead. The generator spreads
its connections over loopback source addresses, BENCH_CONNECTIONS_PER_SOURCE (default 20,000) each.`;

interface Flags {
  only: string[] | undefined;
  write: boolean;
  out: string | undefined;
}

/** Parses argv; bad flags end the program with exit code 2 (as the other CLIs do). */
function parseFlags(argv: string[]): Flags {
  const flags: Flags = { only: undefined, write: false, out: undefined };
  const fail = (msg: string): never => {
    process.stderr.write(`bench: ${msg}\n\n${USAGE}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (a === '--write') flags.write = true;
    else if (a === '--only' || a === '--out') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) fail(`${a} needs a value`);
      if (a === '--out') flags.out = v;
      else {
        flags.only = v!.split(',').filter(Boolean);
        const unknown = flags.only.filter((o) => !STEPS.some((s) => s.id.startsWith(o)));
        if (unknown.length > 0 || flags.only.length === 0) fail(`--only: no step id is or starts with ${unknown.join(', ') || '""'}`);
      }
    } else fail(`unknown flag ${a}`);
  }
  return flags;
}

function summary(r: Result): string {
  if (isScaleRun(r)) return scaleSummary(r);
  if (isFloorRun(r)) return `idle gateway: ${r.msPerSec.toFixed(1)} ms of CPU per second (${r.processes.map((p) => `${p.name} ${p.msPerSec.toFixed(1)}`).join(', ')})`;
  if ('p99Us' in r) return `p50 ${Math.round(r.p50Us)} µs, p99 ${Math.round(r.p99Us)} µs, p99.9 ${Math.round(r.p999Us)} µs, ${r.samples} samples, ingest ${Math.round(r.ingestRate)}/s`;
  if ('perConnection' in r) return `${(r.perConnection / 1024).toFixed(2)} KB per connection (marginal ${(r.marginal / 1024).toFixed(2)} KB), ${r.closed} closed`;
  return `${Math.round(r.rate)}/s (windows ${Math.round(r.min)}–${Math.round(r.max)}), server ${r.serverCpu.toFixed(2)} cores, generator ${r.loadCpu.toFixed(2)} cores, offered ${Math.round(r.offered)}/s`;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  // Whatever happens, no child outlives the run: signals and a hard deadline stop them by PID.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll();
      process.stderr.write(`\nbench: ${sig}: children stopped\n`);
      process.exit(130);
    });
  }
  const hardLimitMs = BUDGET_MS + 1.5 * 60_000;
  setTimeout(() => {
    killAll();
    process.stderr.write(`bench: hard time limit (${hardLimitMs / 60_000} min) reached: children stopped\n`);
    process.exit(1);
  }, hardLimitMs).unref();
  const startedAt = new Date();
  const t0 = performance.now();
  const only = flags.only;
  const steps = only ? STEPS.filter((s) => only.some((o) => s.id === o || s.id.startsWith(o))) : STEPS;
  const runs = new Map<string, Result[]>();
  const missing = new Map<string, string>();
  const speeds: { id: string; core0: number; core1: number }[] = [];
  const others: { id: string; cores: number }[] = [];
  if (!hasTaskset) process.stderr.write('bench: taskset not found: servers and load are not pinned to separate cores\n');
  for (const step of steps) {
    const why = step.unavailable?.();
    if (why) {
      missing.set(step.id, why);
      process.stderr.write(`bench: ${step.id}: ${why}\n`);
      continue;
    }
    if (performance.now() - t0 + step.estimateS * 1000 > BUDGET_MS) {
      missing.set(step.id, `not measured: the run would exceed its ${Math.round(BUDGET_MS / 60_000) + 1}-minute budget`);
      process.stderr.write(`bench: ${step.id}: skipped (time budget)\n`);
      continue;
    }
    const s0 = performance.now();
    const [core0, core1] = await coreSpeeds([0, 1]);
    speeds.push({ id: step.id, core0: core0!, core1: core1! });
    process.stderr.write(`bench: ${step.id} (core probe ${core0} / ${core1} ms) …`);
    try {
      const r = await step.run();
      runs.set(step.id, [...(runs.get(step.id) ?? []), r]);
      if ('otherCpu' in r) others.push({ id: step.id, cores: r.otherCpu });
      process.stderr.write(` ${summary(r)} (${((performance.now() - s0) / 1000).toFixed(1)} s)\n`);
    } catch (err) {
      const msg = (err as Error).message.replace(/\s+/g, ' ').slice(0, 400);
      missing.set(step.id, `failed: ${msg}`);
      process.stderr.write(` failed: ${msg}\n`);
    }
  }
  // The scaling rows want every round (scale/rows.ts).
  const results = new Map<string, Result | ScaleRun[]>();
  for (const [id, rs] of runs) results.set(id, isScaleRun(rs[0]!) ? (rs as ScaleRun[]) : rs.length > 1 && 'rates' in rs[0]! ? combine(rs as Sampled[]) : rs[rs.length - 1]!);
  // A round that failed after another succeeded still counts as measured.
  for (const id of results.keys()) missing.delete(id);
  const durationS = (performance.now() - t0) / 1000;
  const rows = [...buildFleetRows(results, missing, bigFleetWhyNot()), ...buildRows(results, missing), ...buildAlarmRows(results, missing), ...scaleRows(results, missing, cpus().length), ...floorRows(results, missing)];
  const md = render(rows, machine(ROOT), startedAt, durationS, [...notes(FLEET, INGEST_PLAN, ROUNDS), ...scaleNotes(cpus().length), floorNote()], speeds, others);
  process.stdout.write(md + '\n');
  const out = flags.out ?? (only && !flags.write ? undefined : join(ROOT, 'BENCHMARKS.md'));
  if (out) {
    writeFileSync(out, md);
    process.stderr.write(`bench: wrote ${out}\n`);
  }
  process.exit(0);
}

void main();
