/**
 * The headline rows of BENCHMARKS.md: the shape real fleets have (10,000 devices, one frame of 8
 * readings per message, paced from 1 Hz per device up toward saturation), each server under the
 * same load in the same run, and the issue-14 targets on them.
 */
import type { LatencyResult } from './measure/latency.js';
import { readFileSync } from 'node:fs';
import { si, us, type Row } from './report.js';
import { connectionsPerSource } from './load/source-address.js';

type Results = ReadonlyMap<string, unknown>;

/** Devices of the headline runs, and the larger fleet measured where the file limit allows. */
export const FLEET_DEVICES = 10_000;
export const BIG_FLEET_DEVICES = bigFleetDevices();
/** BENCH_BIG_FLEET=N measures the larger fleet at N devices instead (a machine with fewer open files). */
function bigFleetDevices(): number {
  const n = Number(process.env.BENCH_BIG_FLEET);
  return Number.isInteger(n) && n >= 1000 ? n : 100_000;
}
/**
 * Total frames/s of the sweep: 1 Hz per device first, then on past where the servers stop keeping
 * up, so the saturation row finds each one's highest sustained rate rather than the sweep's top.
 */
export const FLEET_RATES = [10_000, 30_000, 40_000, 50_000, 60_000, 70_000] as const;
/** Every server runs at these rates (the targets' rates); Mosquitto's per-core figure is taken at the higher. */
const ALL_SERVERS_AT: readonly number[] = [10_000, 50_000];
export const MOSQUITTO_RATE = 50_000;
/** Above this only the gateway runs: the ws baseline stops keeping up well below it. */
const WS_UP_TO = 60_000;
/** The paced runs' measurement window. */
export const FLEET_WINDOW_MS = 5000;
/** A rate is sustained when the server took ≥ 95% of it and p99 stayed under this. */
export const SUSTAINED_P99_US = 250_000;

export type FleetKind = 'gateway' | 'gateway-all' | 'ws' | 'uws' | 'mosquitto';
/**
 * Which servers run at each rate: all of them at the targets' rates, only the two compared for
 * saturation elsewhere (Mosquitto takes ~30 s to get 10,000 MQTT connections: the time budget).
 */
export function fleetKinds(rate: number): ('gateway' | 'ws' | 'uws' | 'mosquitto')[] {
  if (ALL_SERVERS_AT.includes(rate)) return ['gateway', 'ws', 'uws', 'mosquitto'];
  return rate <= WS_UP_TO ? ['gateway', 'ws'] : ['gateway'];
}

export function fleetId(kind: FleetKind, rate: number): string {
  return `fleet-${kind}-${rate}`;
}

/** The larger fleet's rate: 1 Hz per device, as in the headline's first row. */
export const BIG_FLEET_RATE = BIG_FLEET_DEVICES;
/** Servers of the larger fleet: the gateway, the baseline and the ceiling (Mosquitto would need as many open files again). */
export const BIG_FLEET_KINDS = ['gateway', 'ws', 'uws'] as const;
/** Open files each side needs: a socket per device, and the rest of a process's (the gateway's files and viewers, ~50). */
const BIG_FLEET_FILES = BIG_FLEET_DEVICES + 1000;

export function bigFleetId(kind: FleetKind): string {
  return `fleet-${BIG_FLEET_DEVICES / 1000}k-${kind}`;
}

/**
 * Why the 100,000-device runs cannot be made here, or undefined when they can: the server and the
 * generator (children of the bench) each need a socket per device, so the bench's own open-file
 * limit must allow it; Node cannot raise its soft limit itself. Source ports are no limit: the
 * generator spreads its connections over loopback source addresses (load/source-address.ts).
 */
export function bigFleetWhyNot(): string | undefined {
  let soft = NaN;
  let hard = 'unknown';
  try {
    const m = /Max open files\s+(\S+)\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    soft = m?.[1] === 'unlimited' ? Infinity : Number(m?.[1]);
    hard = m?.[2] ?? hard;
  } catch {
    // Not Linux: say what it needs.
  }
  if (soft >= BIG_FLEET_FILES) return undefined;
  return (
    `not measured: needs ≥ ${BIG_FLEET_FILES.toLocaleString('en-US')} open files for the gateway and for the generator ` +
    `(limit here: ${Number.isNaN(soft) ? 'unknown' : soft}, hard ${hard}; \`ulimit -n ${BIG_FLEET_FILES}\` before \`npm run bench\`, or LimitNOFILE, where the hard limit allows)`
  );
}

const NAMES: Record<FleetKind, string> = {
  gateway: 'Gateway, a user’s dashboard (fleet view + one device page)',
  'gateway-all': 'Gateway, stress: one dashboard following every device',
  ws: '`ws` baseline (tutorial: decode + JSON.stringify + one send per frame to the dashboard)',
  uws: 'Ceiling: uWS, handler only counts (no dashboard)',
  mosquitto: 'Mosquitto 2, QoS 1 PUBLISH per frame, one subscriber to devices/+/telemetry',
};

function sustained(r: LatencyResult, rate: number): boolean {
  return r.ingestRate >= 0.95 * rate && (r.samples === 0 || r.p99Us <= SUSTAINED_P99_US);
}

/** Whether the generator sent the rate it was asked for (on a busy machine it cannot). */
const offered = (r: LatencyResult, rate: number) => r.sentInWindow >= 0.95 * rate * (FLEET_WINDOW_MS / 1000);

/**
 * The highest rate of the sweep the server sustained below the first it did not (0: none), and the
 * rates left undecided because the generator did not send them.
 */
function sustainedRate(get: (id: string) => LatencyResult | undefined, kind: FleetKind): { rate: number; unsent: number[] } {
  let best = 0;
  const unsent: number[] = [];
  for (const rate of FLEET_RATES) {
    const r = get(fleetId(kind, rate));
    if (!r) continue;
    if (!offered(r, rate)) unsent.push(rate);
    else if (sustained(r, rate)) best = rate;
    // The first rate it did not keep up with ends the search: a pass above it would be luck.
    else break;
  }
  return { rate: best, unsent };
}

/** µs of server CPU per frame taken. */
const cpuPerFrame = (r: LatencyResult) => (r.serverCpu / r.ingestRate) * 1e6;

/** The setup column of a paced run. */
const pacedSetup = (devices: number, rate: number) =>
  `${devices.toLocaleString('en-US')} devices × ${rate / devices} Hz = ${rate.toLocaleString('en-US')} frames/s, one 64-byte frame (8 readings) per message`;

interface Compared {
  ws?: LatencyResult;
  ceiling?: LatencyResult;
  mosquitto?: LatencyResult;
}

/** One paced run's row, with its ratios to the other servers of the same load and its targets. */
function fleetRow(kind: FleetKind, r: LatencyResult, rate: number, setup: string, targets: string[], other: Compared): Row {
  const sent = r.sentInWindow / (FLEET_WINDOW_MS / 1000);
  const took = !offered(r, rate)
    ? `; the generator sent only ${si(sent)} of the ${si(rate)} frames/s (the machine’s load: see Details), the server took ${si(r.ingestRate)}`
    : r.ingestRate < 0.95 * rate
      ? `; took only ${si(r.ingestRate)} of the ${si(rate)} frames/s offered: it is saturated`
      : '';
  const lat = r.samples > 0 ? `p50 ${us(r.p50Us)}, p99 ${us(r.p99Us)}; ` : '';
  const row: Row = {
    measurement: NAMES[kind],
    setup,
    result: `${lat}server ${r.serverCpu.toFixed(2)} cores (${cpuPerFrame(r).toFixed(1)} µs per frame)${took}`,
    rate: r.ingestRate,
    readings: r.readingsRate,
    details:
      `${r.samples.toLocaleString('en-US')} latency samples from ${r.sentInWindow.toLocaleString('en-US')} frames sent in the window` +
      (r.samples > 0 ? `; p99.9 ${us(r.p999Us)}, max ${us(r.maxUs)}` : '') +
      `; server ${r.serverCpu.toFixed(2)} cores, generator ${r.loadCpu.toFixed(2)} cores, other processes ${r.otherCpu.toFixed(2)} cores; sender fell behind in ${r.lagTicks} 1-ms ticks` +
      (r.closed > 0 ? `; ${r.closed.toLocaleString('en-US')} connections closed by the server` : ''),
  };
  const ratios: string[] = [];
  const met: boolean[] = [];
  const { ws, ceiling, mosquitto } = other;
  if (kind.startsWith('gateway') && ws) {
    // Per frame taken, so a server that took less of the load does not look cheaper for it.
    const cpu = cpuPerFrame(r) / cpuPerFrame(ws);
    ratios.push(`CPU per frame ${cpu.toFixed(2)}× ws`);
    if (targets.includes('CPU ≤ 0.3× ws')) met.push(cpu <= 0.3);
    if (r.samples > 0 && ws.samples > 0) {
      const p = r.p99Us / ws.p99Us;
      ratios.push(`p99 ${p.toFixed(2)}× ws`);
      if (targets.includes('p99 ≤ 0.5× ws p99')) met.push(p <= 0.5);
    }
  }
  if (kind === 'gateway' && mosquitto) ratios.push(`${(cpuPerFrame(mosquitto) / cpuPerFrame(r)).toFixed(2)}× Mosquitto’s frames per core`);
  if ((kind === 'gateway' || kind === 'ws') && ceiling) ratios.push(`CPU per frame ${(cpuPerFrame(r) / cpuPerFrame(ceiling)).toFixed(2)}× ceiling`);
  if (ratios.length) row.ratio = ratios.join('; ');
  if (targets.length) {
    row.target = targets.join('; ');
    if (met.length === targets.length) row.met = met.every(Boolean) ? 'yes' : 'no';
  }
  return row;
}

export function buildFleetRows(results: Results, missing: ReadonlyMap<string, string>, bigFleetWhyNot: string | undefined): Row[] {
  const get = (id: string) => results.get(id) as LatencyResult | undefined;
  const absent = (id: string) => missing.get(id) ?? 'not measured';
  const rows: Row[] = [];
  const n = FLEET_DEVICES.toLocaleString('en-US');
  for (const rate of FLEET_RATES) {
    const setup = pacedSetup(FLEET_DEVICES, rate);
    const kinds: FleetKind[] = rate === FLEET_RATES[0] ? ['gateway', 'gateway-all', 'ws', 'uws', 'mosquitto'] : fleetKinds(rate);
    const other = { ws: get(fleetId('ws', rate)), ceiling: get(fleetId('uws', rate)), mosquitto: get(fleetId('mosquitto', rate)) };
    for (const kind of kinds) {
      const id = fleetId(kind, rate);
      const r = get(id);
      const targets: string[] = [];
      if (kind === 'gateway' && rate === FLEET_RATES[0]) targets.push('CPU ≤ 0.3× ws');
      if (kind === 'gateway' && (rate === 10_000 || rate === 50_000)) targets.push('p99 ≤ 0.5× ws p99');
      if (!r) rows.push({ measurement: NAMES[kind], setup, missing: absent(id), ...(targets.length ? { target: targets.join('; ') } : {}) });
      else rows.push(fleetRow(kind, r, rate, setup, targets, other));
    }
  }
  // Saturation: the highest rate of the sweep each server sustained.
  const topOf = (kind: FleetKind) => Math.max(...FLEET_RATES.filter((r) => (fleetKinds(r) as FleetKind[]).includes(kind)));
  const s = { gw: sustainedRate(get, 'gateway'), ws: sustainedRate(get, 'ws') };
  const gwMq = get(fleetId('gateway', MOSQUITTO_RATE));
  const mq = get(fleetId('mosquitto', MOSQUITTO_RATE));
  const perCore = gwMq && mq ? cpuPerFrame(mq) / cpuPerFrame(gwMq) : undefined;
  const atLeast = (x: number, kind: FleetKind) => (x === topOf(kind) ? `≥ ${si(x)}` : si(x));
  const unsent = [...new Set([...s.gw.unsent, ...s.ws.unsent])].sort((a, b) => a - b);
  const satRow: Row = {
    measurement: 'Saturation: highest rate sustained (≥ 95% taken, p99 ≤ 250 ms)',
    setup: `${n} devices, one frame per message, rates ${FLEET_RATES.map((r) => si(r)).join(', ')} frames/s`,
    result:
      `gateway ${atLeast(s.gw.rate, 'gateway')}, ws ${atLeast(s.ws.rate, 'ws')} frames/s` +
      (perCore !== undefined ? `; at ${si(MOSQUITTO_RATE)}/s the gateway takes ${perCore.toFixed(2)}× Mosquitto’s frames per core` : '') +
      (unsent.length ? `; undecided at ${unsent.map((r) => si(r)).join(', ')}/s: the generator did not send that rate` : ''),
    target: '≥ 2× ws; ≥ 1× Mosquitto QoS 1 per core',
  };
  if (perCore !== undefined && s.ws.rate > 0) {
    // Only a sweep that went past where ws stopped can show the gateway at 2× it.
    const decided = s.ws.rate < topOf('ws') && !unsent.some((r) => r > s.ws.rate && r <= 2 * s.ws.rate);
    satRow.ratio =
      s.ws.rate === topOf('ws')
        ? 'ws sustained its top rate: the sweep does not tell the ratio'
        : `${s.gw.rate === topOf('gateway') ? '≥ ' : ''}${(s.gw.rate / s.ws.rate).toFixed(2)}× ws`;
    if (decided) satRow.met = s.gw.rate >= 2 * s.ws.rate && perCore >= 1 ? 'yes' : 'no';
  }
  rows.push(satRow);
  rows.push(...bigFleetRows(get, missing, bigFleetWhyNot));
  return rows;
}

/** The larger fleet at 1 Hz per device: the gateway against the baseline and the ceiling, or why it was not run. */
function bigFleetRows(get: (id: string) => LatencyResult | undefined, missing: ReadonlyMap<string, string>, whyNot: string | undefined): Row[] {
  const setup =
    pacedSetup(BIG_FLEET_DEVICES, BIG_FLEET_RATE) +
    `; the generator's connections come from ${Math.ceil(BIG_FLEET_DEVICES / connectionsPerSource())} loopback source addresses`;
  if (BIG_FLEET_KINDS.every((k) => !get(bigFleetId(k)))) {
    return [{ measurement: `Gateway with ${BIG_FLEET_DEVICES.toLocaleString('en-US')} devices`, setup, missing: whyNot ?? missing.get(bigFleetId('gateway')) ?? 'not measured' }];
  }
  const other = { ws: get(bigFleetId('ws')), ceiling: get(bigFleetId('uws')) };
  return BIG_FLEET_KINDS.map((kind) => {
    const r = get(bigFleetId(kind));
    return r ? fleetRow(kind, r, BIG_FLEET_RATE, setup, [], other) : { measurement: NAMES[kind], setup, missing: missing.get(bigFleetId(kind)) ?? 'not measured' };
  });
}
