/**
 * The per-process floor (`--only floor`): what a gateway costs while nothing happens. 1,000
 * devices connected and silent, the two viewers a user has open (viewers.ts), then the CPU of
 * every gateway process over FLOOR_WINDOW_MS with no traffic at all. That CPU per second is paid by
 * every process (`--workers`, cluster instance) whatever its load, so it is what a second process
 * adds to the cost of a frame at a light load; it does not depend on how busy the machine is.
 */
import { join } from 'node:path';
import { findProgram } from '../../services/index.js';
import type { Row } from '../report.js';
import { deviceId } from '../load/devices.js';
import { cpuSeconds, sleep, start, type Child } from '../procs.js';
import { HERE, type BenchKeys } from '../servers.js';
import { SCALE_DEVICES } from './measure.js';
import type { ScaleLoadConfig } from './protocol.js';
import { CLUSTER_INSTANCES } from './steps.js';
import { describeSystem, startSystem, type SystemSpec } from './systems.js';

/** After the connections: the gateway's start-up work (JIT, first GCs) settles. */
export const FLOOR_SETTLE_MS = 3000;
export const FLOOR_WINDOW_MS = 20_000;

export interface FloorRun {
  kind: 'floor';
  system: SystemSpec;
  /** CPU of the gateway's processes summed, in ms per second (millicores), and each process's. */
  msPerSec: number;
  processes: { name: string; msPerSec: number }[];
  connectMs: number;
}

export function isFloorRun(r: object): r is FloorRun {
  return (r as Partial<FloorRun>).kind === 'floor';
}

export const floorId = (s: SystemSpec): string => (s.kind === 'workers' ? `floor-workers-${s.workers}` : `floor-cluster-${s.instances}`);

export async function measureFloor(spec: SystemSpec, keys: BenchKeys): Promise<FloorRun> {
  const sys = await startSystem(spec, keys);
  let load: Child | undefined;
  try {
    const ports = sys.devicePorts;
    // The paced generator, never told to start: devices connect (and authenticate) and stay silent.
    const config: ScaleLoadConfig = {
      host: '127.0.0.1',
      devicePorts: ports,
      fleetKey: keys.fleetKey,
      devices: SCALE_DEVICES,
      viewers: { operatorToken: keys.operatorToken, fleetPort: ports[0]!, devicePagePort: ports[1 % ports.length]!, deviceId: deviceId(0) },
      mode: 'paced',
      ratePerSec: 1,
    };
    load = start('scale-loadgen', process.execPath, [join(HERE, 'scale', 'loadgen.js'), JSON.stringify(config)], { ipc: true });
    const ready = await load.next('ready', 60_000);
    await sleep(FLOOR_SETTLE_MS);
    const procs = sys.gatewayProcesses();
    const before = procs.map((p) => cpuSeconds(p.pid) || 0);
    const t0 = performance.now();
    await sleep(FLOOR_WINDOW_MS);
    const span = (performance.now() - t0) / 1000;
    const processes = procs.map((p, i) => ({ name: p.name, msPerSec: ((cpuSeconds(p.pid) || 0) - before[i]!) * 1000 / span }));
    return { kind: 'floor', system: spec, msPerSec: processes.reduce((a, p) => a + p.msPerSec, 0), processes, connectMs: ready.connectMs };
  } finally {
    await sys.stop();
    await load?.stop();
  }
}

/** The floor of one process, of `--workers 2` (two workers and a primary) and of a cluster of 3. */
export function floorSystems(): SystemSpec[] {
  return [
    { kind: 'workers', workers: 1 },
    { kind: 'workers', workers: 2 },
    { kind: 'cluster', instances: CLUSTER_INSTANCES },
  ];
}

export function floorSteps(keys: BenchKeys): { id: string; estimateS: number; unavailable?: () => string | undefined; run: () => Promise<FloorRun> }[] {
  return floorSystems().map((spec) => ({
    id: floorId(spec),
    estimateS: 30,
    ...(spec.kind === 'cluster' ? { unavailable: () => (findProgram('mosquitto') ? undefined : 'not measured: mosquitto is not installed (Debian package mosquitto)') } : {}),
    run: () => measureFloor(spec, keys),
  }));
}

const f1 = (x: number) => x.toFixed(1);

export function floorRows(results: ReadonlyMap<string, unknown>, missing: ReadonlyMap<string, string>): Row[] {
  const one = results.get(floorId({ kind: 'workers', workers: 1 }));
  return floorSystems().map((spec): Row => {
    const id = floorId(spec);
    const measurement = `Floor: an idle gateway, ${describeSystem(spec)}`;
    const setup = `${SCALE_DEVICES.toLocaleString('en-US')} devices connected and silent, one /live client on the fleet view and one on a device page, no traffic; gateway CPU (every process, user + system from /proc) over ${FLOOR_WINDOW_MS / 1000} s after ${FLOOR_SETTLE_MS / 1000} s; nothing pinned`;
    const r = results.get(id);
    if (r === undefined || !isFloorRun(r as object)) return { measurement, setup, missing: missing.get(id) ?? 'not measured' };
    const run = r as FloorRun;
    const row: Row = {
      measurement,
      setup,
      result: `${f1(run.msPerSec)} ms of CPU per second (${(run.msPerSec / 1000).toFixed(3)} cores)`,
      details: run.processes.map((p) => `${p.name} ${f1(p.msPerSec)} ms/s`).join(', ') + `; ${SCALE_DEVICES.toLocaleString('en-US')} devices connected in ${(run.connectMs / 1000).toFixed(1)} s`,
    };
    if (spec.kind !== 'workers' || spec.workers !== 1) {
      if (one !== undefined && isFloorRun(one as object)) row.ratio = `${f1(run.msPerSec / (one as FloorRun).msPerSec)}× \`--workers 1\``;
    }
    return row;
  });
}

export function floorNote(): string {
  return `Floor (\`npm run bench -- --only floor\`, about 90 s): the CPU a gateway process spends while nothing happens (${SCALE_DEVICES.toLocaleString('en-US')} connected silent devices, the two viewers of the scaling section, ${FLOOR_WINDOW_MS / 1000} s with no traffic). Every process (\`--workers\` worker, cluster instance) pays it whatever its load, so it is the part of a frame's cost that grows when the same traffic is spread over more processes. CPU time from /proc, so the figure does not depend on how busy the rest of the machine is (beyond cache effects).`;
}
