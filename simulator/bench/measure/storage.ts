/**
 * Storage drain into InfluxDB: the gateway's adapter (servers/storage-drain.ts) against raw line
 * protocol (load/influx-raw.ts), each against a fresh influxd (same binary and config, pinned to
 * the server core) so neither run pays for the other's data. Rates are points (lines of 8 fields)
 * stored per second.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { READINGS_PER_FRAME } from '../frames.js';
import type { LoadStats } from '../protocol.js';
import { start } from '../procs.js';
import { HERE, LOAD_CORE, SERVER_CORE } from '../servers.js';
import { startInfluxd, tempDir } from '../../services/index.js';
import { sample, startLoad, type Sampled, type WindowPlan } from './windows.js';

const PLAN: WindowPlan = { warmupMs: 2000, windowMs: 3000, windows: 3 };
export const STORAGE_DEVICES = 100;

async function withInfluxd<T>(run: (port: number, pid: number) => Promise<T>): Promise<T> {
  const influxd = await startInfluxd({ core: SERVER_CORE, tempPrefix: 'bench-' });
  try {
    return await run(influxd.port, influxd.pid ?? -1);
  } finally {
    await influxd.destroy(5000);
  }
}

/** Points stored, counted by the writer (its process is not the busy one here). */
const counter = (s: LoadStats) => ({ t: s.at, frames: s.delivered, readings: s.delivered * READINGS_PER_FRAME });

export function rawLineProtocol(): Promise<Sampled> {
  return withInfluxd(async (port, pid) => {
    const load = startLoad({ mode: 'influx-raw', url: `http://127.0.0.1:${port}`, db: 'bench', rp: 'gateway', devices: STORAGE_DEVICES, batchPoints: 5000, inFlight: 2 }, 'influx-raw');
    try {
      await load.next('ready', 30_000);
      return await sample(load, pid, counter, PLAN);
    } finally {
      await load.stop();
    }
  });
}

export function adapterDrain(): Promise<Sampled> {
  return withInfluxd(async (port, pid) => {
    const dataDir = tempDir('bench-storage-');
    const drain = start('storage-drain', process.execPath, [join(HERE, 'servers', 'storage-drain.js'), JSON.stringify({ influx: `http://127.0.0.1:${port}/bench`, dataDir, devices: STORAGE_DEVICES })], { core: LOAD_CORE, ipc: true });
    try {
      await drain.next('ready', 30_000);
      return await sample(drain, pid, counter, PLAN);
    } finally {
      await drain.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
