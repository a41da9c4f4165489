/** The spill file: order, bound, read offset across reopen, torn tails, checksums, segment cleanup. */
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spill, SPILL_HEADER_BYTES, SPILL_RECORD_HEADER_BYTES } from '../../gateway/storage/spill.js';
import { tempDir } from '../helpers/gateway.js';

const dirs: string[] = [];
const spills: Spill[] = [];
afterEach(async () => {
  for (const s of spills.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function make(maxBytes = 1 << 20, segmentBytes?: number, dir = tempDir('spill-')): Spill {
  dirs.push(dir);
  const s = new Spill(dir, maxBytes, segmentBytes);
  spills.push(s);
  return s;
}

/** A record of `points` lines, `tag` in each. */
function item(tag: string, points = 2): { body: Buffer; points: number } {
  let t = '';
  for (let i = 0; i < points; i++) t += `m,device=${tag} c1=${i} ${i}\n`;
  return { body: Buffer.from(t), points };
}

async function readAll(s: Spill): Promise<string[]> {
  const out: string[] = [];
  for (let r = await s.readNext(); r; r = await s.readNext()) out.push(r.body.toString().split(',')[1]!.split(' ')[0]!);
  return out;
}

describe('Spill', () => {
  it('gives records back in append order across segments and deletes drained segments', async () => {
    const s = make(1 << 20, 200);
    await s.open();
    expect(await s.append(['a', 'b', 'c', 'd', 'e'].map((t) => item(t)))).toBe(5);
    expect(s.pendingPoints).toBe(10);
    const files = readdirSync(s.dir);
    expect(files.length).toBeGreaterThan(1);
    const recs = [];
    for (let r = await s.readNext(); r; r = await s.readNext()) recs.push(r);
    expect(recs.map((r) => r.body.toString().split(' ')[0])).toEqual(['a', 'b', 'c', 'd', 'e'].map((t) => `m,device=${t}`));
    expect(s.hasUnread).toBe(false);
    // Confirmed out of order: the read offset waits for the oldest.
    await s.confirm(recs[1]!);
    expect(s.pendingPoints).toBe(8);
    for (const r of recs) await s.confirm(r);
    expect(s.pendingPoints).toBe(0);
    expect(readdirSync(s.dir)).toHaveLength(1); // the tail, truncated to its header
    expect(s.bytes).toBe(SPILL_HEADER_BYTES);
  });

  it('appends only what fits under its bound, oldest first', async () => {
    const one = SPILL_RECORD_HEADER_BYTES + item('a').body.length;
    const s = make(SPILL_HEADER_BYTES + 3 * one);
    await s.open();
    expect(s.canFit(one)).toBe(true);
    expect(await s.append(['a', 'b', 'c', 'd'].map((t) => item(t)))).toBe(3);
    expect(await s.append([item('e')])).toBe(0);
    expect(s.bytes).toBe(SPILL_HEADER_BYTES + 3 * one);
    expect(s.canFit(one)).toBe(false);
    const r = (await s.readNext())!;
    await s.confirm(r);
    await s.readNext();
    await s.readNext();
    // Room comes back only once the whole file is drained (the tail is truncated then).
    expect(await s.append([item('e')])).toBe(0);
  });

  it('resumes after a restart from the first record not confirmed', async () => {
    const dir = tempDir('spill-');
    const a = make(1 << 20, undefined, dir);
    await a.open();
    await a.append(['a', 'b', 'c', 'd'].map((t) => item(t, 3)));
    const r1 = (await a.readNext())!;
    const r2 = (await a.readNext())!;
    await a.readNext();
    await a.confirm(r2); // out of order: the persisted offset stays before r1
    await a.confirm(r1);
    await a.close();
    const b = make(1 << 20, undefined, dir);
    const report = await b.open();
    expect(report).toMatchObject({ segments: 1, points: 6, tornBytes: 0 });
    expect(b.pendingPoints).toBe(6);
    expect(await readAll(b)).toEqual(['device=c', 'device=d']);
  });

  it('cuts a torn record off the end and keeps appending after the last whole one', async () => {
    const dir = tempDir('spill-');
    const a = make(1 << 20, undefined, dir);
    await a.open();
    await a.append([item('a'), item('b')]);
    await a.close();
    const file = join(dir, readdirSync(dir)[0]!);
    const whole = statSync(file).size;
    const torn = Buffer.alloc(SPILL_RECORD_HEADER_BYTES + 5);
    torn.writeUInt32LE(1000, 0);
    appendFileSync(file, torn);
    const b = make(1 << 20, undefined, dir);
    expect(await b.open()).toMatchObject({ points: 4, tornBytes: torn.length });
    expect(statSync(file).size).toBe(whole);
    await b.append([item('c')]);
    expect(await readAll(b)).toEqual(['device=a', 'device=b', 'device=c']);
  });

  it('hands out a record whose checksum fails as corrupt, and skips a file that is not a spill', async () => {
    const dir = tempDir('spill-');
    const a = make(1 << 20, undefined, dir);
    await a.open();
    await a.append([item('a'), item('b')]);
    await a.close();
    const file = join(dir, readdirSync(dir)[0]!);
    const bytes = readFileSync(file);
    const at = SPILL_HEADER_BYTES + SPILL_RECORD_HEADER_BYTES + 3;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    writeFileSync(file, bytes);
    writeFileSync(join(dir, 'spill-0000000000.log'), 'not a spill file');
    const b = make(1 << 20, undefined, dir);
    expect(await b.open()).toMatchObject({ segments: 1, points: 4 });
    const r1 = (await b.readNext())!;
    const r2 = (await b.readNext())!;
    expect([r1.corrupt, r2.corrupt]).toEqual([true, false]);
    expect(readdirSync(dir)).not.toContain('spill-0000000000.log');
  });
});
