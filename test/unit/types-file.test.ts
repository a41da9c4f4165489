/**
 * The gateway's types file watcher (gateway/types/types-file.ts) on a real file: the stat poll
 * alone notices a change (where fs.watch says nothing), a deleted or broken file keeps the types in force and says why, and a fixed one is taken.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEMO_DEVICE_TYPES, deviceType, useDeviceTypes } from '../../devices/device-types.js';
import { readTypesFile, TypesFile } from '../../gateway/types/types-file.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'types-file-'));
const path = join(dir, 'types.json');
const doc = (unit: string) => JSON.stringify({ types: [{ type: 'tank', name: 'Tank', channels: [{ id: 1, name: 'level', unit, type: 'f32' }] }] });

let file: TypesFile | undefined;
afterEach(() => {
  file?.close();
  file = undefined;
  useDeviceTypes(DEMO_DEVICE_TYPES);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logger(lines: string[]) {
  return pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
}

describe('TypesFile', () => {
  it('a YAML file is refused with what to do, not only "not valid JSON"', () => {
    const yaml = join(dir, 'types.yaml');
    writeFileSync(yaml, 'types:\n  - type: tank\n    name: Tank\n');
    expect(() => readTypesFile(yaml)).toThrow(expect.objectContaining({ code: 'TYPES_INVALID', message: expect.stringMatching(/is not valid JSON: [\s\S]*Types files are JSON; YAML is not read: convert it/) }));
  });

  it('polling alone notices changes; a bad or missing file keeps the types in force and says why', async () => {
    writeFileSync(path, doc('%'));
    const lines: string[] = [];
    file = new TypesFile(path, logger(lines), { watch: false, pollMs: 20, debounceMs: 10 });
    const changes: string[] = [];
    file.onChange((types) => changes.push(types[0]!.channels[0]!.unit));
    file.load();
    file.start();
    expect(deviceType('tank')?.channels[0]?.unit).toBe('%');

    writeFileSync(path, doc('cm'));
    await waitFor(() => deviceType('tank')?.channels[0]?.unit === 'cm', 'the poll to take the change', 5000);
    expect(changes).toEqual(['cm']);
    expect(file.counts).toEqual({ reloads: 1, failures: 0 });

    unlinkSync(path);
    await waitFor(() => file!.counts.failures === 1, 'the missing file to be noticed', 5000);
    expect(lines.join('')).toMatch(/TYPES_UNREADABLE.*cannot be read.*previous device types stay in force/);
    expect(deviceType('tank')?.channels[0]?.unit).toBe('cm');

    writeFileSync(path, '{"types": [{"type": "tank"}]}');
    await waitFor(() => file!.counts.failures === 2, 'the broken file to be noticed', 5000);
    expect(file.lastError).toMatch(/types\[0\]\.name/);
    expect(deviceType('tank')?.channels[0]?.unit).toBe('cm');

    writeFileSync(path, doc('mm'));
    await waitFor(() => deviceType('tank')?.channels[0]?.unit === 'mm', 'the fixed file to be taken', 5000);
    expect(file.lastError).toBeUndefined();
    expect(file.counts).toEqual({ reloads: 2, failures: 2 });
    expect(changes).toEqual(['cm', 'mm']);
  });
});
