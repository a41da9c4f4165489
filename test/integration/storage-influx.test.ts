/**
 * The InfluxDB adapter against a real influxd that hangs, dies and comes back: nothing lost, nothing
 * doubled, acks (durableTicket) never ahead of durable storage, bounds counted exactly, bad points
 * refused without holding up the rest.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TelemetryBatch, ValueType } from '../../devices/codec/index.js';
import { createStorage, type Storage, type StorageOptions } from '../../gateway/storage/index.js';
import { ROOT, tempDir } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { waitFor } from '../helpers/wait.js';

const BASE = Date.UTC(2024, 2, 1);
const RP = 'gateway';

let influxd: Influxd;
const dirs: string[] = [];
const open: Storage[] = [];

function dataDir(): string {
  const d = tempDir('storage-influx-');
  dirs.push(d);
  return d;
}

function storage(db: string, dir: string, extra: Partial<StorageOptions> = {}): Storage {
  const s = createStorage({ influx: `${influxd.url}/${db}`, influxRetention: 'INF', dataDir: dir, memoryPoints: 0, flushMs: 20, ...extra });
  open.push(s);
  return s;
}

const batch = new TelemetryBatch(8);
/** Point i of a device: channel 1 = i at BASE + i. Its ticket is returned. */
function put(s: Storage, device: string, i: number, value = i): number {
  batch.count = 1;
  batch.channels[0] = 1;
  batch.types[0] = ValueType.F64;
  batch.values[0] = value;
  batch.offsets[0] = 0;
  return s.write(device, undefined, BASE + i, batch);
}

async function count(db: string, device: string): Promise<{ count: number; sum: number; max: number }> {
  const r = await influxd.query(`SELECT count("c1"), sum("c1"), max("c1") FROM "${RP}"."telemetry" WHERE "device" = '${device}'`, db);
  const row = r.results?.[0]?.series?.[0]?.values?.[0];
  return row ? { count: row[1], sum: row[2], max: row[3] } : { count: 0, sum: 0, max: -1 };
}

/** Times of every point in the spill files on disk now (complete records only), as the tests' i. */
function spilled(dir: string): Set<number> {
  const out = new Set<number>();
  const sd = join(dir, 'spill');
  if (!existsSync(sd)) return out;
  for (const f of readdirSync(sd).filter((n) => /^spill-\d+\.log$/.test(n))) {
    const b = readFileSync(join(sd, f));
    let pos = 32;
    while (pos + 12 <= b.length) {
      const len = b.readUInt32LE(pos);
      if (pos + 12 + len > b.length) break;
      for (const line of b.subarray(pos + 12, pos + 12 + len).toString('utf8').split('\n')) {
        if (line) out.add(Number(line.slice(line.lastIndexOf(' ') + 1)) - BASE);
      }
      pos += 12 + len;
    }
  }
  return out;
}

const drained = (s: Storage, last: number) => () => {
  const h = s.health();
  return s.durableTicket >= last && h.buffered === 0 && h.spilledPoints === 0;
};

describe.skipIf(!influxdPath())('InfluxDB storage against a real influxd', () => {
  beforeAll(async () => {
    influxd = await startInfluxd();
  });
  afterEach(async () => {
    influxd.resume();
    for (const s of open.splice(0)) await s.close();
  });
  afterAll(async () => {
    await influxd?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('loses and doubles nothing through a 5 s hang and a crash under 20k points/s, and acks only durable points', async () => {
    const dir = dataDir();
    const s = storage('outage', dir, { bufferPoints: 5000, batchPoints: 2000, spillAfterMs: 400, requestTimeoutMs: 2000, retryMaxMs: 500 });
    await s.start();
    let n = 0;
    let last = 0;
    const load = setInterval(() => {
      for (let k = 0; k < 200; k++) last = put(s, 'load-1', n++); // 200 per 10 ms
    }, 10);
    const pauses: string[] = [];
    try {
      await new Promise((r) => setTimeout(r, 2000));
      expect(s.health().written).toBeGreaterThan(10_000);
      influxd.pause();
      await new Promise((r) => setTimeout(r, 300)); // answers already on their way are taken
      const d0 = s.durableTicket;
      let dMax = d0;
      for (let k = 0; k < 9; k++) {
        await new Promise((r) => setTimeout(r, 500));
        // Every ticket past d0 (tickets are i + 1) must be in the spill file, as the database is frozen.
        const d = s.durableTicket;
        const onDisk = spilled(dir);
        for (let t = d0 + 1; t <= d; t++) if (!onDisk.has(t - 1)) throw new Error(`ticket ${t} is durable but only in memory (d0 ${d0}, d ${d})`);
        dMax = d;
        pauses.push(`${d - d0} durable via spill, ${s.health().status}`);
      }
      expect(dMax - d0).toBeGreaterThan(50_000); // acks kept flowing through the spill
      const h = s.health();
      expect(h.status).toBe('degraded');
      expect(h.spilledPoints).toBeGreaterThan(50_000);
      await influxd.kill();
      await influxd.restart();
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      clearInterval(load);
      influxd.resume();
    }
    await waitFor(drained(s, last), 'the spill to drain', 40_000, 50);
    const got = await count('outage', 'load-1');
    expect(got.count).toBe(n);
    expect(got.sum).toBe((n * (n - 1)) / 2);
    const h = s.health();
    expect(h).toMatchObject({ status: 'ok', lost: 0, rejected: 0, spilledPoints: 0, buffered: 0 });
    expect(h.retried).toBeGreaterThan(0);
    expect(h.written).toBeGreaterThanOrEqual(n);
  }, 80_000);

  it('drains a spill left by close() while the database hung, from a new instance on the same data folder', async () => {
    const dir = dataDir();
    const a = storage('reopen', dir, { requestTimeoutMs: 1000, closeTimeoutMs: 500 });
    await a.start();
    influxd.pause();
    let last = 0;
    for (let i = 0; i < 10_000; i++) last = put(a, 'r-1', i);
    await a.close();
    expect(a.durableTicket).toBe(last);
    expect(spilled(dir).size).toBe(10_000);
    influxd.resume();
    const b = storage('reopen', dir);
    await b.start();
    expect(b.health().spilledPoints).toBe(10_000);
    await waitFor(drained(b, 0), 'the spill to drain', 20_000, 20);
    expect(await count('reopen', 'r-1')).toEqual({ count: 10_000, sum: (10_000 * 9_999) / 2, max: 9_999 });
    expect(b.health()).toMatchObject({ status: 'ok', lost: 0, rejected: 0 });
  });

  it('drains the spill of a process killed with SIGKILL, ignoring a torn record at its end', async () => {
    const dir = dataDir();
    const N = 20_000;
    influxd.pause();
    const code = `
      const { createStorage } = await import(${JSON.stringify(join(ROOT, 'dist/gateway/storage/index.js'))});
      const { TelemetryBatch } = await import(${JSON.stringify(join(ROOT, 'dist/devices/codec/index.js'))});
      const s = createStorage({ influx: ${JSON.stringify(`${influxd.url}/killed`)}, influxRetention: 'INF', dataDir: ${JSON.stringify(dir)}, memoryPoints: 0, flushMs: 20, spillAfterMs: 100, requestTimeoutMs: 1000 });
      await s.start();
      const b = new TelemetryBatch(4);
      let last = 0;
      for (let i = 0; i < ${N}; i++) {
        b.count = 1; b.channels[0] = 1; b.types[0] = 2; b.values[0] = i; b.offsets[0] = 0;
        last = s.write('k-1', undefined, ${BASE} + i, b);
        if (i % 2000 === 1999) await new Promise((r) => setTimeout(r, 5));
      }
      const t0 = Date.now();
      while (s.durableTicket < last && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 10));
      console.log(JSON.stringify({ durable: s.durableTicket, last, health: s.health() }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const report = JSON.parse(await waitFor(() => out.split('\n').find((l) => l.startsWith('{')), `the child to spill (output: ${out})`, 40_000, 20));
      expect(report.durable).toBe(report.last);
      expect(report.health.spilledPoints).toBe(N);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(spilled(dir).size).toBe(N);
    // A crash in the middle of an append: a record header promising more bytes than follow.
    const seg = readdirSync(join(dir, 'spill')).filter((f) => f.endsWith('.log')).sort().pop()!;
    const torn = Buffer.alloc(40);
    torn.writeUInt32LE(5000, 0);
    torn.writeUInt32LE(99, 4);
    appendFileSync(join(dir, 'spill', seg), torn);
    influxd.resume();
    const s = storage('killed', dir);
    await s.start();
    await waitFor(drained(s, 0), 'the spill to drain', 20_000, 20);
    expect(await count('killed', 'k-1')).toEqual({ count: N, sum: (N * (N - 1)) / 2, max: N - 1 });
    expect(s.health()).toMatchObject({ lost: 0, rejected: 0, spilledPoints: 0 });
  });

  it('refuses new writes instead of dropping when the database hangs and the spill file is full; settles only what is on disk, and takes writes again by itself', async () => {
    const dir = dataDir();
    const s = storage('full', dir, { bufferPoints: 1000, batchPoints: 500, spillMaxBytes: 256 * 1024, spillAfterMs: 100, requestTimeoutMs: 500, retryMaxMs: 300 });
    await s.start();
    influxd.pause();
    let taken = 0;
    let refused = 0;
    let last = 0;
    // Write until storage has said no 2,000 times with the spill full (bounded: the spill holds
    // ~5,000 points, memory 2,000; refusals may begin earlier while the spill lags behind the load).
    const full = () => refused >= 2000 && /spill file is full/.test(s.health().detail ?? '');
    for (let k = 0; !full() && k < 200_000; k++) {
      if (s.admit()) last = put(s, 'f-1', taken++);
      else refused++;
      if (k % 1000 === 999) await new Promise((r) => setTimeout(r, 20));
    }
    expect(full()).toBe(true);
    const h = s.health();
    expect(h).toMatchObject({ status: 'down', refused, lost: 0 });
    expect(h.detail).toMatch(/spill file is full.*refused \(STORAGE_FULL\)/);
    expect(h.spilledBytes).toBeLessThanOrEqual(256 * 1024);
    // Everything settled is in the spill file (the database took nothing): no ticket jumped over memory.
    const d = s.durableTicket;
    expect(d).toBeLessThan(last);
    const onDisk = spilled(dir);
    for (let t = 1; t <= d; t++) if (!onDisk.has(t - 1)) throw new Error(`ticket ${t} is durable but not in the spill file (durable ${d})`);
    influxd.resume();
    await waitFor(() => s.admit(), 'storage to take writes again', 20_000, 20);
    await waitFor(drained(s, last), 'everything to settle', 20_000, 20);
    // Every point taken is stored, exactly once; nothing was dropped.
    expect(await count('full', 'f-1')).toEqual({ count: taken, sum: (taken * (taken - 1)) / 2, max: taken - 1 });
    expect(s.health()).toMatchObject({ status: 'ok', lost: 0, rejected: 0, spilledPoints: 0 });
  });

  it('refuses points with a field type conflict or an impossible time for good, without holding up the rest', async () => {
    const dir = dataDir();
    const s = storage('conflict', dir, { batchPoints: 100 });
    await s.start();
    // Someone else's data: in this shard of the measurement, c9 is a boolean field.
    const seed = await influxd.writeRaw('conflict', `telemetry,device=legacy-1 c9=true ${BASE}\n`, RP);
    expect(seed.status).toBe(204);
    let last = 0;
    for (let i = 0; i < 1000; i++) {
      last = put(s, 'ok-1', i);
      if (i % 250 === 0) {
        // A float where a bool is: the whole point (c1 and c9 at one time) is refused.
        batch.count = 2;
        batch.channels.set([1, 9]);
        batch.values.set([i, i]);
        last = s.write('legacy-1', undefined, BASE + i + 1, batch);
      }
    }
    last = put(s, 'ok-2', Date.UTC(2300, 0, 1) - BASE); // InfluxDB cannot hold year 2300
    await waitFor(() => s.durableTicket >= last, 'everything to settle', 10_000, 10);
    const h = s.health();
    expect(h).toMatchObject({ rejected: 5, retried: 0, lost: 0, status: 'ok' });
    expect(h.lastError).toMatch(/STORAGE_POINT_INVALID|STORAGE_PARTIAL_WRITE: .*field type conflict/);
    expect(await count('conflict', 'ok-1')).toEqual({ count: 1000, sum: (1000 * 999) / 2, max: 999 });
    const legacy = await influxd.query(`SELECT count("c9") FROM "${RP}"."telemetry" WHERE "device" = 'legacy-1'`, 'conflict');
    expect(legacy.results[0].series[0].values[0][1]).toBe(1); // only the seed
  });

  it('writes with the credentials in the URL, as a user without admin rights, and refuses wrong ones at start', async () => {
    const secure = await startInfluxd({ auth: true });
    try {
      for (const q of [
        'CREATE DATABASE "secure"',
        'CREATE RETENTION POLICY "gateway" ON "secure" DURATION 52w REPLICATION 1',
        `CREATE USER "writer" WITH PASSWORD 'w r!te'`,
        'GRANT ALL ON "secure" TO "writer"',
      ]) {
        await secure.query(q);
      }
      const dir = dataDir();
      const base = { influxRetention: '52w', dataDir: dir, memoryPoints: 0, flushMs: 20 };
      const bad = createStorage({ influx: `http://writer:wrong@127.0.0.1:${secure.port}/secure`, ...base });
      await expect(bad.start()).rejects.toMatchObject({ code: 'STORAGE_UNAUTHORIZED' });
      await bad.close();
      const s = createStorage({ influx: `http://writer:${encodeURIComponent('w r!te')}@127.0.0.1:${secure.port}/secure`, ...base });
      open.push(s);
      await s.start();
      let last = 0;
      for (let i = 0; i < 100; i++) last = put(s, 'auth-1', Date.now() - BASE - 60_000 + i);
      await waitFor(() => s.durableTicket >= last, 'the writes', 5000, 10);
      expect(s.health()).toMatchObject({ status: 'ok', written: 100, rejected: 0, retried: 0 });
      const r = await secure.query(`SELECT count("c1") FROM "gateway"."telemetry"`, 'secure');
      expect(r.results[0].series[0].values[0][1]).toBe(100);
      expect((await s.history({ device: 'auth-1', channel: 1, from: Date.now() - 120_000, to: Date.now(), points: 10 })).reduce((n, b) => n + b.count, 0)).toBe(100);
    } finally {
      await secure.destroy();
    }
  });

  it('stores the documented schema: measurement telemetry, tags device and type, float field per channel', async () => {
    const s = storage('schema', dataDir());
    await s.start();
    batch.count = 3;
    batch.channels.set([1, 3, 4]);
    batch.types.set([ValueType.F32, ValueType.Bool, ValueType.I32]);
    batch.values.set([21.5, 1, -7]);
    batch.offsets.set([0, 0, 0]);
    const t = s.write('vibration-0001', 'vibration', BASE, batch);
    await waitFor(() => s.durableTicket >= t, 'the write', 5000, 10);
    const keys = await influxd.query(`SHOW FIELD KEYS ON "schema" FROM "${RP}"."telemetry"`);
    expect(keys.results[0].series[0].values).toEqual([
      ['c1', 'float'],
      ['c3', 'float'],
      ['c4', 'float'],
    ]);
    const rows = await influxd.query(`SELECT * FROM "${RP}"."telemetry"`, 'schema');
    expect(rows.results[0].series[0]).toMatchObject({ name: 'telemetry', columns: ['time', 'c1', 'c3', 'c4', 'device', 'type'], values: [[BASE, 21.5, 1, -7, 'vibration-0001', 'vibration']] });
    const rps = await influxd.query('SHOW RETENTION POLICIES ON "schema"');
    expect(rps.results[0].series[0].values.map((r: unknown[]) => r[0])).toContain(RP);
  });
});
