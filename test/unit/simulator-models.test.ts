/** The simulator's sensor models: in range over a simulated week, believable shapes, deterministic. */
import { describe, expect, it } from 'vitest';
import { deviceType } from '../../devices/device-types.js';
import { batteryAt, batteryProfile } from '../../simulator/models/battery.js';
import { ClimateModel } from '../../simulator/models/climate.js';
import { Faults } from '../../simulator/models/faults.js';
import { createModel, MODELED_TYPES, type ModeledType } from '../../simulator/models/index.js';
import { DAY, HOUR, MINUTE } from '../../simulator/models/noise.js';
import { PowerModel } from '../../simulator/models/power.js';
import { VibrationModel } from '../../simulator/models/vibration.js';

const START = Date.UTC(2025, 5, 2, 0, 0, 0);
const WEEK = 7 * DAY;
const SEEDS = [1, 2, 3, 42, 1234567, 0xdeadbeef];

/** Samples a model every `stepMs` over [START, START + span); rows of channel values. */
function run(type: ModeledType, seed: number, stepMs: number, span = WEEK): Float64Array[] {
  const m = createModel(type, seed, START);
  const rows: Float64Array[] = [];
  for (let t = START; t < START + span; t += stepMs) {
    const out = new Float64Array(m.spec.channels.length);
    m.sample(t, out);
    rows.push(out);
  }
  return rows;
}

function correlation(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('sensor models over a simulated week', () => {
  it.each(MODELED_TYPES)('%s: every channel stays in the schema range and is finite', (type) => {
    const spec = deviceType(type)!;
    const bad: string[] = [];
    for (const seed of SEEDS) {
      for (const row of run(type, seed, MINUTE)) {
        spec.channels.forEach((c, i) => {
          const v = row[i]!;
          const ok = Number.isFinite(v) && (c.type !== 'bool' || v === 0 || v === 1) && (c.min === undefined || v >= c.min) && (c.max === undefined || v <= c.max);
          if (!ok) bad.push(`seed ${seed} ${c.name} = ${v}`);
        });
      }
    }
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it('temperature follows a daily cycle and humidity moves against it', () => {
    for (const seed of SEEDS) {
      const m = new ClimateModel(seed, START);
      const temps: number[] = [];
      const hums: number[] = [];
      const out = new Float64Array(3);
      for (let t = START; t < START + WEEK; t += 10 * MINUTE) {
        m.sample(t, out);
        temps.push(out[0]!);
        hums.push(out[1]!);
      }
      expect(correlation(temps, hums)).toBeLessThan(-0.5);
      // Local afternoon is warmer than local night, on average over the week.
      const offset = m.profile.utcOffsetH;
      const at = (hour: number): number => {
        let sum = 0;
        for (let d = 0; d < 7; d++) {
          m.sample(START + d * DAY + (hour - offset) * HOUR, out);
          sum += out[0]!;
        }
        return sum / 7;
      };
      expect(at(15)).toBeGreaterThan(at(3));
      // Noise: consecutive readings a second apart differ, but only a little.
      m.sample(START + 1000, out);
      const a = out[0]!;
      m.sample(START + 2000, out);
      expect(a).not.toBe(out[0]);
      expect(Math.abs(a - out[0]!)).toBeLessThan(1.5);
    }
  });

  it('battery only ever drains, never below 0, and flat ones exist in a fleet', () => {
    let dead = 0;
    let wrong = 0;
    for (let seed = 0; seed < 200; seed++) {
      const p = batteryProfile(seed, START);
      let last = Infinity;
      for (let t = START - DAY; t < START + 4 * WEEK; t += HOUR) {
        const v = batteryAt(p, t);
        if (v < 0 || v > last) wrong++;
        last = v;
      }
      if (last === 0) dead++;
    }
    expect(wrong).toBe(0);
    expect(dead).toBeGreaterThan(0);
    expect(dead).toBeLessThan(40);
    // The battery channel of the climate and vibration models drains the same way.
    for (const type of ['climate', 'vibration'] as const) {
      const i = deviceType(type)!.channels.findIndex((c) => c.name === 'battery');
      const rows = run(type, 7, HOUR);
      for (let k = 1; k < rows.length; k++) expect(rows[k]![i]!).toBeLessThanOrEqual(rows[k - 1]![i]!);
      expect(rows.at(-1)![i]!).toBeLessThan(rows[0]![i]!);
    }
  });

  it('power = voltage × current, voltage near 230, current steps, energy integrates', () => {
    for (const seed of SEEDS) {
      const m = new PowerModel(seed);
      const out = new Float64Array(4);
      let lastEnergy = -Infinity;
      let integrated = 0;
      let lastCurrent = NaN;
      let steps = 0;
      const e0 = m.energyKWh;
      const volts: number[] = [];
      let wrong = 0;
      for (let t = START; t < START + WEEK; t += MINUTE) {
        m.sample(t, out);
        const [v, i, w, e] = [out[0]!, out[1]!, out[2]!, out[3]!];
        if (Math.abs(w - v * i) > 1e-9 * Math.max(1, w)) wrong++;
        if (e < lastEnergy) wrong++;
        if (lastEnergy !== -Infinity) integrated += (w * MINUTE) / 3_600_000 / 1000;
        lastEnergy = e;
        if (Math.abs(i - lastCurrent) > 0.2 * Math.max(1, lastCurrent)) steps++;
        lastCurrent = i;
        volts.push(v);
      }
      expect(wrong).toBe(0);
      expect(Math.abs(lastEnergy - e0 - integrated)).toBeLessThan(1e-6 * lastEnergy);
      const mean = volts.reduce((a, b) => a + b, 0) / volts.length;
      expect(mean).toBeGreaterThan(225);
      expect(mean).toBeLessThan(235);
      expect(new Set(volts).size).toBeGreaterThan(volts.length / 2); // noisy, not constant
      expect(steps).toBeGreaterThan(100); // load steps every few minutes
    }
  });

  it('vibration bursts occur, rarely, and raise the alarm over the threshold', () => {
    for (const seed of SEEDS) {
      const m = new VibrationModel(seed, START);
      const out = new Float64Array(4);
      let bursts = 0;
      let inBurst = false;
      let alarms = 0;
      let samples = 0;
      let wrong = 0;
      for (let t = START; t < START + WEEK; t += 1000) {
        m.sample(t, out);
        samples++;
        const high = out[0]! > 8;
        if (high && !inBurst) bursts++;
        inBurst = high;
        if (out[2] === 1) alarms++;
        if ((out[2] === 1) !== out[0]! > m.threshold) wrong++;
        if (!(out[1]! > 0)) wrong++; // peak g follows velocity
      }
      expect(wrong).toBe(0);
      expect(bursts).toBeGreaterThan(50);
      expect(alarms / samples).toBeLessThan(0.05);
      // A lower threshold (the set-threshold command) raises the alarm more often.
      m.threshold = 0.5;
      m.sample(START + 123_456, out);
      expect(out[2]).toBe(1);
    }
  });

  it('is deterministic: same seed and time, same readings; other seeds differ', () => {
    for (const type of MODELED_TYPES) {
      const a = run(type, 99, 17 * MINUTE, DAY);
      const b = run(type, 99, 17 * MINUTE, DAY);
      const c = run(type, 100, 17 * MINUTE, DAY);
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    }
  });
});

describe('faults', () => {
  it('are rare, stay in range, and leave battery and energy alone', () => {
    for (const type of MODELED_TYPES) {
      const spec = deviceType(type)!;
      let affected = 0;
      let total = 0;
      const bad: string[] = [];
      for (const seed of SEEDS) {
        const m = createModel(type, seed, START);
        const f = new Faults(seed, spec);
        const clean = new Float64Array(spec.channels.length);
        const out = new Float64Array(spec.channels.length);
        for (let t = START; t < START + WEEK; t += MINUTE) {
          m.sample(t, out);
          clean.set(out);
          const dropped = f.apply(t, out);
          total++;
          if (dropped !== 0 || out.some((v, i) => v !== clean[i])) affected++;
          spec.channels.forEach((c, i) => {
            const v = out[i]!;
            if ((c.name === 'battery' || c.name === 'energy' || c.type === 'bool') && v !== clean[i]) bad.push(`${type} ${c.name} changed`);
            if ((c.min !== undefined && v < c.min) || (c.max !== undefined && v > c.max)) bad.push(`${type} ${c.name} = ${v}`);
          });
        }
      }
      expect(bad.slice(0, 5)).toEqual([]);
      expect(affected / total).toBeLessThan(0.02);
    }
  });

  it('do happen in a fleet: stuck values, dropouts and outliers', () => {
    const counts = { stuck: 0, dropouts: 0, outliers: 0 };
    const spec = deviceType('climate')!;
    const out = new Float64Array(3);
    for (let seed = 0; seed < 50; seed++) {
      const m = createModel('climate', seed, START);
      const f = new Faults(seed, spec);
      for (let t = START; t < START + 2 * DAY; t += MINUTE) {
        m.sample(t, out);
        f.apply(t, out);
      }
      for (const k of ['stuck', 'dropouts', 'outliers'] as const) counts[k] += f.counts[k];
    }
    expect(counts.stuck).toBeGreaterThan(0);
    expect(counts.dropouts).toBeGreaterThan(0);
    expect(counts.outliers).toBeGreaterThan(0);
  });
});
