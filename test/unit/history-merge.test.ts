/** Merging the history parts of several instances (cluster/remote-history.ts, memory store). */
import { describe, expect, it } from 'vitest';
import { merge } from '../../gateway/cluster/remote-history.js';

describe('history merge', () => {
  const q = { device: 'd', channel: 1, from: 0, to: 999, points: 10 };

  it('keeps raw points raw, in time order, while they fit', () => {
    const a = [{ t: 5, mean: 1, min: 1, max: 1, count: 1 }];
    const b = [{ t: 2, mean: 2, min: 2, max: 2, count: 1 }, { t: 9, mean: 3, min: 3, max: 3, count: 1 }];
    expect(merge([a, [], b], q).map((p) => p.t)).toEqual([2, 5, 9]);
    expect(merge([[], b], q)).toBe(b);
  });

  it('gives the buckets one store would give for all the points together', () => {
    const values = Array.from({ length: 40 }, (_, i) => ({ t: i * 25, v: (i * 7) % 11 }));
    const parts = [values.filter((_, i) => i % 3 === 0), values.filter((_, i) => i % 3 !== 0)];
    const bucketsOf = (pts: { t: number; v: number }[]) => {
      // The same fixed-width buckets the stores compute (storage/series.ts).
      const width = Math.ceil((q.to - q.from + 1) / q.points);
      const by = new Map<number, number[]>();
      for (const p of pts) {
        const t = q.from + Math.floor((p.t - q.from) / width) * width;
        by.set(t, [...(by.get(t) ?? []), p.v]);
      }
      return [...by].sort((x, y) => x[0] - y[0]).map(([t, vs]) => ({ t, mean: vs.reduce((a, b) => a + b, 0) / vs.length, min: Math.min(...vs), max: Math.max(...vs), count: vs.length }));
    };
    const merged = merge(parts.map(bucketsOf), q);
    const whole = bucketsOf(values);
    expect(merged.map((b) => [b.t, b.min, b.max, b.count])).toEqual(whole.map((b) => [b.t, b.min, b.max, b.count]));
    for (let i = 0; i < whole.length; i++) expect(merged[i]!.mean).toBeCloseTo(whole[i]!.mean, 9);
  });
});
