/**
 * The simulator on a types file (simulate --types-file): the file's types become the fleet's, a
 * known type keeps its model for the channels it models, and any other channel gets values inside
 * its declared range.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClimateModel, modelFor } from '../../simulator/models/index.js';
import { parseOptions } from '../../simulator/options.js';

const dir = mkdtempSync(join(tmpdir(), 'sim-types-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'types.json');
writeFileSync(
  file,
  JSON.stringify({
    types: [
      {
        type: 'climate',
        name: 'Climate+',
        channels: [
          { id: 1, name: 'temperature', unit: '°C', type: 'f32', min: -20, max: 45 },
          { id: 7, name: 'co2', unit: 'ppm', type: 'i32', min: 400, max: 2000 },
        ],
      },
      { type: 'tank', name: 'Tank', channels: [{ id: 1, name: 'level', unit: '%', type: 'f32', min: 0, max: 100 }, { id: 2, name: 'overflow', unit: '', type: 'bool' }] },
    ],
  }),
);

describe('simulate --types-file', () => {
  it("takes the file's types (all by default, or those --types picks) and refuses others", () => {
    const base = ['--fleet-key', 'k'];
    expect(parseOptions([...base, '--types-file', file], {}).options.types).toEqual(['climate', 'tank']);
    expect(parseOptions([...base, '--types', file], {}).options.types).toEqual(['climate', 'tank']);
    expect(parseOptions([...base, '--types-file', file, '--types', 'tank'], {}).options.types).toEqual(['tank']);
    expect(parseOptions([...base, '--types-file', file], {}).options.deviceTypes?.[1]?.channels[0]?.name).toBe('level');
    expect(() => parseOptions([...base, '--types-file', file, '--types', 'power'], {})).toThrow(/"power" is not a type of/);
    expect(() => parseOptions([...base, '--types', 'tank'], {})).toThrow(/unknown device type "tank"/);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ types: [{ type: 'x', name: 'X', channels: [{ id: 1, name: 'a', type: 'f16' }] }] }));
    expect(() => parseOptions([...base, '--types-file', join(dir, 'bad.json')], {})).toThrow(/TYPES_INVALID.*types\[0\]\.channels\[0\]\.type/);
  });

  it('keeps the known model for a channel it models and stays in range elsewhere', () => {
    const types = parseOptions(['--fleet-key', 'k', '--types-file', file], {}).options.deviceTypes!;
    const start = Date.UTC(2026, 0, 1);
    const climate = modelFor(types[0]!, 7, start);
    const known = new ClimateModel(7, start);
    const tank = modelFor(types[1]!, 7, start);
    const out = new Float64Array(2);
    const ref = new Float64Array(3);
    const bools = new Set<number>();
    for (let t = start; t < start + 2 * 86_400_000; t += 60_000) {
      climate.sample(t, out);
      known.sample(t, ref);
      expect(out[0]).toBe(ref[0]);
      expect(Number.isInteger(out[1])).toBe(true);
      expect(out[1]).toBeGreaterThanOrEqual(400);
      expect(out[1]).toBeLessThanOrEqual(2000);
      tank.sample(t, out);
      expect(out[0]).toBeGreaterThanOrEqual(0);
      expect(out[0]).toBeLessThanOrEqual(100);
      bools.add(out[1]!);
    }
    expect([...bools].sort()).toEqual([0, 1]);
  });
});
