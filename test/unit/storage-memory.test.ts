/** The in-memory store's per-series ring against a plain model: newest `max` points by time, the later write of a time winning. */
import { describe, expect, it } from 'vitest';
import { TelemetryBatch } from '../../devices/codec/index.js';
import { MemoryStorage } from '../../gateway/storage/memory.js';
import { mulberry32 } from '../helpers/random.js';

function one(value: number): TelemetryBatch {
  const b = new TelemetryBatch(1);
  b.count = 1;
  b.channels[0] = 3;
  b.types[0] = 2;
  b.values[0] = value;
  b.offsets[0] = 0;
  return b;
}

describe('memory storage ring', () => {
  for (const max of [1, 2, 5, 16, 63, 64, 65, 100, 200]) {
    it(`keeps the newest ${max} points by time through in-order, late and repeated writes`, async () => {
      const rnd = mulberry32(max * 7919);
      const store = new MemoryStorage(max);
      const model = new Map<number, number>();
      let t = 1_000_000;
      for (let i = 0; i < 3000; i++) {
        const r = rnd();
        // Mostly forward in time; some late (up to 3 × max back), some repeats of a recent time.
        const time = r < 0.7 ? (t += 1 + Math.floor(rnd() * 3)) : r < 0.9 ? t - Math.floor(rnd() * 3 * max) : t;
        const value = i;
        store.write('d', undefined, time, one(value));
        model.set(time, value);
        if (model.size > max) model.delete(Math.min(...model.keys()));
        if (i % 97 === 0 || i === 2999) {
          const got = await store.history({ device: 'd', channel: 3, from: 0, to: t + 10, points: 1_000_000 });
          const want = [...model].sort((a, b) => a[0] - b[0]).map(([tt, v]) => ({ t: tt, mean: v, min: v, max: v, count: 1 }));
          expect(got).toEqual(want);
        }
      }
      // Chunks of 64 points go back to the pool as the series moves on: no more than it needs now.
      expect((store as unknown as { pool: { used: number } }).pool.used).toBeLessThanOrEqual(Math.ceil(max / 64) + 1);
      await store.close();
      expect((store as unknown as { pool: { used: number } }).pool.used).toBe(0);
    });
  }
});

describe('memory storage channels', () => {
  it('keeps each channel apart whatever order a device sends them in, with few channels and with many', async () => {
    const rnd = mulberry32(42);
    for (const width of [3, 8, 40]) {
      const store = new MemoryStorage(1000);
      const model = new Map<number, Map<number, number>>();
      const b = new TelemetryBatch(64);
      for (let f = 0; f < 200; f++) {
        // Usually the same order frame after frame; sometimes shuffled, sometimes a channel twice (two sample times).
        const chans = Array.from({ length: width }, (_, i) => 10 + i * 5);
        if (rnd() < 0.3) chans.sort(() => rnd() - 0.5);
        if (rnd() < 0.2) chans.push(chans[0]!);
        b.count = chans.length;
        chans.forEach((ch, i) => {
          b.channels[i] = ch;
          b.types[i] = 2;
          b.values[i] = f * 1000 + ch + i;
          b.offsets[i] = i === width ? -1 : 0;
          const m = model.get(ch) ?? new Map<number, number>();
          m.set(1_000_000 + f * 10 + b.offsets[i]!, b.values[i]!);
          model.set(ch, m);
        });
        store.write('d', undefined, 1_000_000 + f * 10, b);
      }
      expect(await store.channels('d')).toEqual([...model.keys()].sort((x, y) => x - y));
      for (const [ch, m] of model) {
        const got = await store.history({ device: 'd', channel: ch, from: 0, to: 2_000_000, points: 1_000_000 });
        expect(got.map((p) => [p.t, p.mean]), `channel ${ch}, ${width} wide`).toEqual([...m].sort((x, y) => x[0] - y[0]));
      }
      await store.close();
    }
  });
});
