/**
 * How fast the storage writer drains into a real influxd, next to raw line-protocol POSTs of the same
 * points in the same batches (5000 points, 2 in flight, keep-alive) in the same run. Prints a table;
 * asserts only a loose floor (the benchmark target is ≥ 0.9× raw). Longer runs: STORAGE_BENCH_SCALE=3.
 */
import { Agent, request } from 'node:http';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TelemetryBatch, ValueType } from '../../devices/codec/index.js';
import { createStorage } from '../../gateway/storage/index.js';
import { LineBuffer, LineEncoder, seriesPrefix } from '../../gateway/storage/line-protocol.js';
import { tempDir } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { waitFor } from '../helpers/wait.js';

/** Points per run: enough for about a second per run. */
const POINTS: Record<number, number> = { 1: 400_000, 8: 150_000 };
const SCALE = Number(process.env.STORAGE_BENCH_SCALE ?? 1);
const ROUNDS = 5;
const BATCH = 5000;
const DEVICES = 100;
const BASE = Date.UTC(2024, 3, 1);
/** Stable id strings, as the gateway's device table holds them. */
const NAMES = Array.from({ length: DEVICES }, (_, d) => `bench-${d}`);

let influxd: Influxd;
const dirs: string[] = [];

/** Point i: device i % DEVICES, `fields` channels, time BASE + i. */
function fillPoint(b: TelemetryBatch, i: number, fields: number): void {
  b.count = fields;
  for (let c = 0; c < fields; c++) {
    b.channels[c] = c + 1;
    b.types[c] = ValueType.F32;
    b.values[c] = Math.fround(20 + ((i * 7 + c) % 1000) / 10);
    b.offsets[c] = 0;
  }
}

function post(agent: Agent, path: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: influxd.port, method: 'POST', path, agent, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function createDb(db: string): Promise<void> {
  await influxd.query(`CREATE DATABASE "${db}"`);
  await influxd.query(`CREATE RETENTION POLICY "gateway" ON "${db}" DURATION INF REPLICATION 1`);
}

/** Raw: the same lines, pre-built, POSTed 2 at a time. */
async function raw(db: string, fields: number): Promise<{ pps: number; cpuUs: number }> {
  const N = Math.round(POINTS[fields]! * SCALE);
  await createDb(db);
  const enc = new LineEncoder();
  const b = new TelemetryBatch(16);
  const bodies: Buffer[] = [];
  const prefixes = Array.from({ length: DEVICES }, (_, d) => Buffer.from(seriesPrefix('telemetry', `bench-${d}`, 'climate')));
  const lines = new LineBuffer();
  for (let i = 0; i < N; i++) {
    fillPoint(b, i, fields);
    enc.encode(prefixes[i % DEVICES]!, BASE + i, b, lines);
    if ((i + 1) % BATCH === 0 || i === N - 1) bodies.push(lines.take());
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const path = `/write?db=${db}&rp=gateway&precision=ms`;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < bodies.length) await post(agent, path, bodies[next++]!);
  };
  await Promise.all([lane(), lane()]);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  await influxd.query(`DROP DATABASE "${db}"`);
  return { pps: (N / ms) * 1000, cpuUs: (cpu.user + cpu.system) / N };
}

/** The writer: storage.write() per point, fed so that a backlog always waits (nothing spills). */
async function writer(db: string, fields: number): Promise<{ pps: number; cpuUs: number }> {
  const N = Math.round(POINTS[fields]! * SCALE);
  const dir = tempDir('bench-');
  dirs.push(dir);
  const s = createStorage({ influx: `${influxd.url}/${db}`, influxRetention: 'INF', dataDir: dir, memoryPoints: 0 });
  await s.start();
  const b = new TelemetryBatch(16);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  let last = 0;
  // Keep 2–4 batches waiting: the writer always has work, nothing is old enough to spill, and the
  // producer sleeps (not spins) while the database works.
  const produce = (): void => {
    while (i < N && last - s.durableTicket < 4 * BATCH) {
      for (const end = Math.min(N, i + BATCH); i < end; i++) {
        fillPoint(b, i, fields);
        last = s.write(NAMES[i % DEVICES]!, 'climate', BASE + i, b);
      }
    }
  };
  s.onDurable!(produce);
  produce();
  await waitFor(() => i >= N && s.durableTicket >= last, 'the writer to drain', 120_000, 2);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const h = s.health();
  await s.close();
  expect(h).toMatchObject({ written: N, spilledPoints: 0, lost: 0, rejected: 0 });
  await influxd.query(`DROP DATABASE "${db}"`);
  return { pps: (N / ms) * 1000, cpuUs: (cpu.user + cpu.system) / N };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe.skipIf(!influxdPath())('storage drain throughput', () => {
  beforeAll(async () => {
    influxd = await startInfluxd();
  });
  afterAll(async () => {
    await influxd?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const fields of [1, 8]) {
    it(`drains ${fields}-field points at close to raw line-protocol speed`, async () => {
      await raw(`warm_raw_${fields}`, fields);
      await writer(`warm_writer_${fields}`, fields);
      const r: number[] = [];
      const w: number[] = [];
      const rc: number[] = [];
      const wc: number[] = [];
      const ratios: number[] = [];
      for (let k = 0; k < ROUNDS; k++) {
        // Alternate who goes first, so drift (compactions, other load) hits both alike.
        const first = k % 2 === 0 ? await raw(`raw_${fields}_${k}`, fields) : await writer(`writer_${fields}_${k}`, fields);
        const second = k % 2 === 0 ? await writer(`writer_${fields}_${k}`, fields) : await raw(`raw_${fields}_${k}`, fields);
        const [a, b] = k % 2 === 0 ? [first, second] : [second, first];
        r.push(a.pps);
        rc.push(a.cpuUs);
        w.push(b.pps);
        wc.push(b.cpuUs);
        ratios.push(b.pps / a.pps);
      }
      const ratio = median(ratios);
      console.log(
        `storage drain, ${Math.round(POINTS[fields]! * SCALE)} points × ${fields} field(s), batches of ${BATCH}, 2 in flight: ` +
          `raw ${r.map((x) => Math.round(x)).join(' / ')} points/s (median ${Math.round(median(r))}, ${median(rc).toFixed(1)} µs CPU/point in node); ` +
          `writer ${w.map((x) => Math.round(x)).join(' / ')} points/s (median ${Math.round(median(w))}, ${median(wc).toFixed(1)} µs CPU/point in node); ` +
          `writer/raw per round ${ratios.map((x) => x.toFixed(2)).join(' / ')}, median ${ratio.toFixed(2)}`,
      );
      // A loose floor: the machine is shared and influxd competes with node for 2 cores.
      expect(ratio).toBeGreaterThan(0.5);
    }, 180_000);
  }
});
