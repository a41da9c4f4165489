/**
 * One contract for every storage adapter (as hono runs one suite against each router): the memory
 * store and InfluxDB (a real influxd) pass the same tests.
 */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TelemetryBatch, ValueType } from '../../devices/codec/index.js';
import { createStorage, type Storage } from '../../gateway/storage/index.js';
import { tempDir } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { waitFor } from '../helpers/wait.js';

const T0 = Date.UTC(2024, 0, 15, 0, 0, 0);
const DAY = 86_400_000;

interface R {
  ch: number;
  v: number | boolean;
  type?: 'f32' | 'f64' | 'i32' | 'bool';
  off?: number;
}

const TYPE = { f32: ValueType.F32, f64: ValueType.F64, i32: ValueType.I32, bool: ValueType.Bool } as const;

/** Fills the one reused batch, as ingest does. */
function fill(batch: TelemetryBatch, readings: R[]): TelemetryBatch {
  batch.count = readings.length;
  readings.forEach((r, i) => {
    const type = r.type ?? (typeof r.v === 'boolean' ? 'bool' : 'f64');
    batch.channels[i] = r.ch;
    batch.types[i] = TYPE[type];
    batch.values[i] = typeof r.v === 'boolean' ? (r.v ? 1 : 0) : type === 'f32' ? Math.fround(r.v) : r.v;
    batch.offsets[i] = r.off ?? 0;
  });
  return batch;
}

interface Adapter {
  name: string;
  skip?: boolean;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  make(): Storage;
}

function storageContract(a: Adapter): void {
  describe.skipIf(a.skip)(`storage contract: ${a.name}`, () => {
    let s: Storage;
    const batch = new TelemetryBatch(1024);
    let last = 0;
    const w = (device: string, type: string | undefined, t: number, readings: R[]): number => {
      last = s.write(device, type, t, fill(batch, readings));
      // The caller reuses the batch at once: the storage must have copied what it keeps.
      fill(batch, [{ ch: 200, v: -999 }, { ch: 201, v: -999 }]);
      batch.count = 0;
      return last;
    };
    const settled = async (): Promise<void> => {
      await waitFor(() => s.durableTicket >= last, `durableTicket to reach ${last}`, 20_000, 5);
    };
    const hist = (device: string, ch: number, from: number, to: number, points: number) => s.history({ device, channel: ch, from, to, points });

    beforeAll(async () => a.setup?.());
    afterAll(async () => a.teardown?.());
    beforeEach(async () => {
      s = a.make();
      await s.start();
      last = 0;
    });
    afterEach(async () => s.close());

    it('reads back what was written: times, values, types, several channels and offsets per frame', async () => {
      for (let i = 0; i < 50; i++) {
        w('climate-0001', 'climate', T0 + i * 1000, [
          { ch: 1, v: 20 + i / 8, type: 'f32' },
          { ch: 2, v: 1 / 3 + i * 1e-9, type: 'f64' },
          { ch: 3, v: i % 2 === 0, type: 'bool' },
          { ch: 4, v: 0 - i * 100_000, type: 'i32' },
          { ch: 5, v: i, off: 250 },
          { ch: 5, v: i + 0.5, off: 500 },
        ]);
      }
      await settled();
      const from = T0;
      const to = T0 + 60_000;
      const one = (i: number, v: number, off = 0) => ({ t: T0 + i * 1000 + off, mean: v, min: v, max: v, count: 1 });
      const range = [...Array(50).keys()];
      expect(await hist('climate-0001', 1, from, to, 1000)).toEqual(range.map((i) => one(i, Math.fround(20 + i / 8))));
      expect(await hist('climate-0001', 2, from, to, 1000)).toEqual(range.map((i) => one(i, 1 / 3 + i * 1e-9)));
      expect(await hist('climate-0001', 3, from, to, 1000)).toEqual(range.map((i) => one(i, i % 2 === 0 ? 1 : 0)));
      expect(await hist('climate-0001', 4, from, to, 1000)).toEqual(range.map((i) => one(i, 0 - i * 100_000)));
      expect(await hist('climate-0001', 5, from, to, 1000)).toEqual(range.flatMap((i) => [one(i, i, 250), one(i, i + 0.5, 500)]));
      // Nothing of the garbage the caller left in the reused batch got stored.
      expect(await s.channels('climate-0001')).toEqual([1, 2, 3, 4, 5]);
      // A range boundary is inclusive on both ends.
      expect((await hist('climate-0001', 1, T0 + 1000, T0 + 3000, 100)).map((b) => b.t)).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
    });

    it('keeps one point when the same (device, channel, time) is written twice, the later value winning', async () => {
      w('d-1', undefined, T0, [{ ch: 1, v: 1 }]);
      w('d-1', undefined, T0, [{ ch: 1, v: 2 }]);
      w('d-1', undefined, T0 + 1, [{ ch: 1, v: 3 }, { ch: 1, v: 4 }]); // twice in one frame
      w('d-1', undefined, T0, [{ ch: 2, v: 5 }]); // another channel at the same time does not disturb channel 1
      for (let k = 0; k < 3; k++) w('d-1', undefined, T0 + 10, [{ ch: 1, v: 7 }]); // a replay
      await settled();
      expect(await hist('d-1', 1, T0 - 10, T0 + 100, 100)).toEqual([
        { t: T0, mean: 2, min: 2, max: 2, count: 1 },
        { t: T0 + 1, mean: 4, min: 4, max: 4, count: 1 },
        { t: T0 + 10, mean: 7, min: 7, max: 7, count: 1 },
      ]);
      expect(await hist('d-1', 2, T0 - 10, T0 + 100, 100)).toEqual([{ t: T0, mean: 5, min: 5, max: 5, count: 1 }]);
    });

    it('answers a day of history with at most `points` buckets of mean, min and max', async () => {
      const every = 30_000;
      const n = DAY / every;
      const value = (i: number) => Math.round(1000 * Math.sin(i / 50) + (i % 7)) / 10;
      for (let i = 0; i < n; i++) w('power-0007', 'power', T0 + i * every, [{ ch: 3, v: value(i) }, { ch: 4, v: i * 0.25 }]);
      await settled();
      const check = async (from: number, to: number, points: number) => {
        const got = await hist('power-0007', 3, from, to, points);
        const width = Math.ceil((to - from + 1) / points);
        const want = new Map<number, { sum: number; min: number; max: number; count: number }>();
        for (let i = 0; i < n; i++) {
          const t = T0 + i * every;
          if (t < from || t > to) continue;
          const b = from + Math.floor((t - from) / width) * width;
          const e = want.get(b) ?? { sum: 0, min: Infinity, max: -Infinity, count: 0 };
          e.sum += value(i);
          e.min = Math.min(e.min, value(i));
          e.max = Math.max(e.max, value(i));
          e.count++;
          want.set(b, e);
        }
        expect(got.length).toBeLessThanOrEqual(points);
        expect(got.map((b) => b.t)).toEqual([...want.keys()]);
        got.forEach((b) => {
          const e = want.get(b.t)!;
          expect(b.count).toBe(e.count);
          expect(b.min).toBe(e.min);
          expect(b.max).toBe(e.max);
          expect(b.mean).toBeCloseTo(e.sum / e.count, 9);
        });
        return got;
      };
      expect((await check(T0, T0 + DAY - 1, 100)).length).toBe(100);
      expect((await check(T0, T0 + DAY - 1, 500)).length).toBe(500);
      expect((await check(T0 + 3_600_000 + 7, T0 + 5 * 3_600_000, 37)).length).toBeLessThanOrEqual(37); // an unaligned range
      expect((await check(T0 - DAY, T0 + 2 * DAY, 1)).length).toBe(1);
      // Fewer points than buckets: the raw points.
      const raw = await hist('power-0007', 3, T0, T0 + DAY - 1, n);
      expect(raw.length).toBe(n);
      expect(raw.every((b, i) => b.count === 1 && b.t === T0 + i * every && b.mean === value(i))).toBe(true);
    });

    it('lists the channels a device has data on', async () => {
      w('vibration-0002', 'vibration', T0, [{ ch: 7, v: 1 }, { ch: 2, v: true }]);
      w('vibration-0002', 'vibration', T0 + 5, [{ ch: 1, v: 0.5 }]);
      w('vibration-0003', 'vibration', T0, [{ ch: 9, v: 1 }]);
      await settled();
      expect(await s.channels('vibration-0002')).toEqual([1, 2, 7]);
      expect(await s.channels('vibration-0003')).toEqual([9]);
      expect(await s.channels('nobody')).toEqual([]);
      expect(await hist('nobody', 1, T0 - DAY, T0 + DAY, 10)).toEqual([]);
      expect(await hist('vibration-0002', 7, T0 + 1, T0 + DAY, 10)).toEqual([]);
    });

    it('deletes every reading of one device, and only of that device (DELETE /api/devices/{id}?history=true)', async () => {
      w('gone-0001', 'climate', T0, [{ ch: 1, v: 1 }, { ch: 2, v: 2 }]);
      w('gone-0001', 'power', T0 + 1000, [{ ch: 3, v: 3 }]);
      w('kept-0001', 'climate', T0, [{ ch: 1, v: 4 }]);
      await settled();
      expect(await s.channels('gone-0001')).toEqual([1, 2, 3]);
      await s.deleteDevice('gone-0001');
      expect(await s.channels('gone-0001')).toEqual([]);
      expect(await hist('gone-0001', 1, T0 - DAY, T0 + DAY, 10)).toEqual([]);
      expect((await hist('kept-0001', 1, T0 - DAY, T0 + DAY, 10)).map((b) => b.mean)).toEqual([4]);
      // Deleting what is not there is not an error (a repeated DELETE).
      await s.deleteDevice('gone-0001');
      await s.deleteDevice('nobody');
    });

    it('round-trips bools and float64 values exactly', async () => {
      const f64 = [Number.MAX_VALUE, Number.MIN_VALUE, -0, -1.5e-300, 0.1, Math.PI, 2 ** 53 + 2, -123456789.98765433, 1e21, 123e-20];
      f64.forEach((v, i) => w('dev.f64:1', 'x', T0 + i, [{ ch: 0, v, type: 'f64' }, { ch: 255, v: i % 3 === 0, type: 'bool' }]));
      await settled();
      expect((await hist('dev.f64:1', 0, T0, T0 + 100, 100)).map((b) => b.mean)).toEqual(f64);
      expect((await hist('dev.f64:1', 255, T0, T0 + 100, 100)).map((b) => b.mean)).toEqual(f64.map((_, i) => (i % 3 === 0 ? 1 : 0)));
      // A bucket of bools: mean = share of true, min/max 0 or 1.
      const [b] = await hist('dev.f64:1', 255, T0, T0 + 100, 1);
      expect(b).toMatchObject({ count: f64.length, min: 0, max: 1 });
      expect(b!.mean).toBeCloseTo(4 / 10, 12);
    });

    it('gives increasing tickets, settles all of them, and reports health', async () => {
      const t1 = w('h-1', undefined, T0, [{ ch: 1, v: 1 }]);
      const t2 = w('h-1', undefined, T0 + 1, [{ ch: 1, v: 2 }, { ch: 2, v: 2, off: 3 }]);
      const t3 = w('h-1', undefined, T0 + 2, []);
      expect([t2 - t1, t3 - t2]).toEqual([1, 1]);
      await settled();
      expect(s.durableTicket).toBe(t3);
      const h = s.health();
      expect(h).toMatchObject({ status: 'ok', buffered: 0, spilledBytes: 0, spilledPoints: 0, written: 3, refused: 0, lost: 0, rejected: 0 });
    });

    it('admits writes while healthy, keeps the times of now, and whenDurable resolves for a written ticket', async () => {
      expect(s.admit()).toBe(true);
      const now = Date.now();
      const r = s.timeRange(now);
      expect(r.from).toBeLessThanOrEqual(now - DAY);
      expect(r.to).toBeGreaterThanOrEqual(now + DAY);
      const t = w('d-1', undefined, T0, [{ ch: 1, v: 1 }]);
      expect(await s.whenDurable(t, 20_000)).toBe(true);
      expect(s.durableTicket).toBeGreaterThanOrEqual(t);
      expect(s.health().refused).toBe(0);
    });
  });
}

storageContract({ name: 'memory', make: () => createStorage({ dataDir: '/nonexistent', memoryPoints: 100_000 }) });

let influxd: Influxd | undefined;
let dirs: string[] = [];
let dbs = 0;
storageContract({
  name: 'influxdb',
  skip: !influxdPath(),
  setup: async () => {
    influxd = await startInfluxd();
  },
  teardown: async () => {
    await influxd?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  },
  make: () => {
    const dataDir = tempDir('storage-contract-');
    dirs.push(dataDir);
    return createStorage({ influx: `${influxd!.url}/contract_${++dbs}`, influxRetention: 'INF', dataDir, memoryPoints: 0, flushMs: 10 });
  },
});
