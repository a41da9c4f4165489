/**
 * `simulate --incident` and the fault models: the staged incident drives its devices into what the
 * gateway's default rules catch (climate temperature above 35 °C for 10 s, clearing below 33; a
 * vibration monitor's alarm channel true; a device silent for 60 s) within ~30 s, heals, and starts
 * over; the random faults include a slow drift that crosses such a threshold. The rules are
 * re-evaluated here by a few lines of reference logic over the readings the devices would send.
 */
import { describe, expect, it } from 'vitest';
import { deviceType } from '../../devices/device-types.js';
import { cycleSeconds, Incident, incidentCast, incidentRole, INCIDENT_TIMELINE, type IncidentClock } from '../../simulator/incident.js';
import { ClimateModel } from '../../simulator/models/climate.js';
import { driftTo, Faults, FAULT_WINDOW_MS } from '../../simulator/models/faults.js';
import { createModel, MODELED_TYPES, type ModeledType } from '../../simulator/models/index.js';
import { DAY, MINUTE } from '../../simulator/models/noise.js';
import { PowerModel } from '../../simulator/models/power.js';
import { VibrationModel } from '../../simulator/models/vibration.js';
import { parseOptions } from '../../simulator/options.js';

const T0 = Date.UTC(2025, 5, 2, 3, 0, 0); // a cold night hour: the overheat has far to climb
const SEEDS = [1, 2, 3, 42, 1234567, 0xdeadbeef];

/** One round per second for `seconds` from T0: what the device sends (undefined when silent). */
function rounds(model: ClimateModel | VibrationModel | PowerModel, incident: Incident, seconds: number, from = 0): { s: number; values: Float64Array | undefined }[] {
  const out: { s: number; values: Float64Array | undefined }[] = [];
  for (let s = from; s < from + seconds; s++) {
    const t = T0 + s * 1000;
    const values = new Float64Array(model.spec.channels.length);
    model.sample(t, values);
    const dropped = incident.apply(t, t, values);
    out.push({ s, values: dropped === 0 ? values : undefined });
  }
  return out;
}

/** "above `threshold` for `forS`, clears below `clearBelow`": the seconds it raised and cleared at. */
function aboveFor(series: { s: number; v: number }[], threshold: number, forS: number, clearBelow: number): { raised: number[]; cleared: number[] } {
  const raised: number[] = [];
  const cleared: number[] = [];
  let since: number | undefined;
  let active = false;
  for (const { s, v } of series) {
    if (!active) {
      if (v > threshold) {
        since ??= s;
        if (s - since >= forS) {
          active = true;
          raised.push(s);
        }
      } else since = undefined;
    } else if (v < clearBelow) {
      active = false;
      since = undefined;
      cleared.push(s);
    }
  }
  return { raised, cleared };
}

const clock = (everyS = 600): IncidentClock => ({ t0: T0, everyMs: everyS * 1000 });

describe('the --incident cast', () => {
  it('gives the first device of each type a part, and names it', () => {
    const types: ModeledType[] = ['climate', 'power', 'vibration'];
    expect([0, 1, 2, 3, 4, 5].map((i) => incidentRole(types, i))).toEqual(['overheat', 'silence', 'machine-alarm', undefined, undefined, undefined]);
    expect(incidentCast(types, 24).map((p) => [p.id, p.role])).toEqual([
      ['climate-0001', 'overheat'],
      ['power-0001', 'silence'],
      ['vibration-0001', 'machine-alarm'],
    ]);
    expect(incidentCast(['vibration'], 5, 'x-').map((p) => p.id)).toEqual(['vibration-x-0001']);
    expect(incidentCast(types, 1).map((p) => p.id)).toEqual(['climate-0001']);
    expect(incidentCast(types, 24)[0]!.text).toMatch(/climate-0001 overheats: temperature up to 40 °C/);
  });

  it('is an option (off by default, on in --demo) that starts over every --incident-every seconds', () => {
    expect(parseOptions(['--fleet-key', 'k'], {}).options).toMatchObject({ incident: false, incidentEveryS: 600 });
    expect(parseOptions(['--fleet-key', 'k', '--demo'], {}).options.incident).toBe(true);
    expect(parseOptions(['--fleet-key', 'k', '--demo', '--no-incident'], {}).options.incident).toBe(false);
    expect(parseOptions(['--fleet-key', 'k', '--incident', '--incident-every', '0'], {}).options).toMatchObject({ incident: true, incidentEveryS: 0 });
    expect(() => parseOptions(['--fleet-key', 'k', '--incident-every', '-1'], {})).toThrow(/--incident-every \/ SIMULATE_INCIDENT_EVERY/);
    expect(() => parseOptions(['--fleet-key', 'k', '--incident-every', '60'], {})).toThrow(/--incident-every \/ SIMULATE_INCIDENT_EVERY: 60 is shorter than the incident \(150 s\)/);
    expect(cycleSeconds(-5, 600_000)).toBe(-1);
    expect(cycleSeconds(12_000, 600_000)).toBe(12);
    expect(cycleSeconds(612_000, 600_000)).toBe(12);
    expect(cycleSeconds(612_000, 0)).toBe(612);
  });
});

describe('the staged incident against the default rules', () => {
  it('a climate sensor overheats: above 35 °C for 10 s within 30 s, cleared below 33 later, in range throughout', () => {
    for (const seed of SEEDS) {
      const model = new ClimateModel(seed, T0);
      const incident = new Incident('overheat', model, clock());
      const sent = rounds(model, incident, 200);
      const temps = sent.map((r) => ({ s: r.s, v: r.values![0]! }));
      const { raised, cleared } = aboveFor(temps, 35, 10, 33);
      expect(raised.length, `seed ${seed}`).toBe(1);
      expect(raised[0]!).toBeLessThanOrEqual(30);
      expect(cleared.length).toBe(1);
      const { fromS, rampS, holdS, coolS } = INCIDENT_TIMELINE.overheat;
      expect(cleared[0]!).toBeGreaterThan(fromS + rampS + holdS);
      expect(cleared[0]!).toBeLessThanOrEqual(fromS + rampS + holdS + coolS);
      // A drift, not a jump: no step between rounds larger than the ramp's slope allows.
      for (let i = 1; i < temps.length; i++) expect(Math.abs(temps[i]!.v - temps[i - 1]!.v)).toBeLessThan(8);
      expect(temps.every((x) => x.v >= -20 && x.v <= 45)).toBe(true);
      // Before and long after, the model's own readings: humidity and battery are untouched.
      const plain = new Float64Array(3);
      model.sample(T0, plain);
      expect(sent[0]!.values).toEqual(plain);
    }
  });

  it('a vibration monitor alarms from second 20 to 35, and its alarm channel still follows its threshold', () => {
    for (const seed of SEEDS) {
      const model = new VibrationModel(seed, T0);
      const incident = new Incident('machine-alarm', model, clock());
      const sent = rounds(model, incident, 60);
      const on = sent.filter((r) => r.values![2] === 1).map((r) => r.s);
      const { fromS, forS } = INCIDENT_TIMELINE.machineAlarm;
      for (let s = fromS; s < fromS + forS; s++) expect(on, `seed ${seed} second ${s}`).toContain(s);
      expect(Math.min(...on.filter((s) => s >= fromS))).toBeLessThanOrEqual(30);
      // Velocity and peak agree with the alarm (peak follows velocity).
      for (const r of sent) expect(r.values![2] === 1).toBe(r.values![0]! > model.threshold);
      // An operator who raised the threshold above the knock sees no alarm (set-threshold).
      model.threshold = 50;
      expect(rounds(model, incident, forS, fromS).some((r) => r.values![2] === 1)).toBe(false);
    }
  });

  it('a power meter falls silent long enough for the 60 s silence rule, then speaks again', () => {
    const model = new PowerModel(7);
    const incident = new Incident('silence', model, clock());
    const sent = rounds(model, incident, 120);
    const silent = sent.filter((r) => r.values === undefined).map((r) => r.s);
    const { fromS, forS } = INCIDENT_TIMELINE.silence;
    expect(silent[0]).toBe(fromS);
    expect(silent.length).toBe(forS);
    expect(forS).toBeGreaterThan(60);
    expect(fromS + 60).toBeLessThan(120);
    expect(sent.at(-1)!.values).toBeDefined();
  });

  it('starts over every cycle, or happens once with --incident-every 0; nothing before the fleet starts', () => {
    const model = new ClimateModel(3, T0);
    const every = new Incident('overheat', model, clock(300));
    const second = rounds(model, every, 60, 300).map((r) => ({ s: r.s - 300, v: r.values![0]! }));
    expect(aboveFor(second, 35, 10, 33).raised.length).toBe(1);
    const once = new Incident('overheat', model, clock(0));
    expect(aboveFor(rounds(model, once, 60, 600).map((r) => ({ s: r.s, v: r.values![0]! })), 35, 10, 33).raised).toEqual([]);
    const unstarted = new Incident('overheat', model, { t0: 0, everyMs: 600_000 });
    expect(rounds(model, unstarted, 60).some((r) => r.values![0]! > 33)).toBe(false);
  });
});

describe('fault models', () => {
  it('a slow drift moves a channel a quarter of its range by the window end and can cross an alarm threshold', () => {
    expect(driftTo(10, 20, 0)).toBe(10);
    expect(driftTo(10, 20, 0.5)).toBe(15);
    expect(driftTo(10, 20, 2)).toBe(20);
    const spec = deviceType('climate')!;
    let drifts = 0;
    let crossed = 0;
    for (let seed = 0; seed < 200 && crossed === 0; seed++) {
      const m = createModel('climate', seed, T0);
      const f = new Faults(seed, spec);
      const clean = new Float64Array(3);
      const out = new Float64Array(3);
      for (let t = T0; t < T0 + 4 * DAY; t += MINUTE) {
        m.sample(t, clean);
        out.set(clean);
        const before = f.counts.drifts;
        f.apply(t, out);
        if (f.counts.drifts === before) continue;
        drifts++;
        // Grows through the window: at its end a quarter of the channel's span (clamped at its max).
        const i = out.findIndex((v, k) => v !== clean[k]);
        const c = spec.channels[i]!;
        const into = (t % FAULT_WINDOW_MS) / FAULT_WINDOW_MS;
        if (into > 0) expect(out[i]!).toBeCloseTo(Math.min(c.max!, clean[i]! + (c.max! - c.min!) * 0.25 * into), 6);
        if (out[0]! > 35 && clean[0]! < 33) crossed++;
      }
    }
    expect(drifts).toBeGreaterThan(0);
    expect(crossed).toBeGreaterThan(0);
  });

  it('every kind happens in a fleet: stuck, dropouts, drifts, outliers', () => {
    const counts = { stuck: 0, dropouts: 0, drifts: 0, outliers: 0 };
    for (const type of MODELED_TYPES) {
      const spec = deviceType(type)!;
      const out = new Float64Array(spec.channels.length);
      for (let seed = 0; seed < 40; seed++) {
        const m = createModel(type, seed, T0);
        const f = new Faults(seed, spec);
        for (let t = T0; t < T0 + 2 * DAY; t += MINUTE) {
          m.sample(t, out);
          f.apply(t, out);
        }
        for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] += f.counts[k];
      }
    }
    for (const k of Object.keys(counts) as (keyof typeof counts)[]) expect(counts[k], k).toBeGreaterThan(0);
  });
});
