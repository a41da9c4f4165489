/**
 * The batched writer with a scripted database: batching, tickets, backoff, bisection of refused
 * requests, spill order and durability, close.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../../gateway/storage/errors.js';
import type { WriteOutcome } from '../../gateway/storage/influx-http.js';
import { Spill } from '../../gateway/storage/spill.js';
import { BatchWriter, type WriterOptions, type WriterSink } from '../../gateway/storage/writer.js';
import { tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const OPTS: WriterOptions = { batchPoints: 100, flushMs: 10, maxInFlight: 2, bufferPoints: 1000, spillAfterMs: 60_000, retryInitialMs: 20, retryMaxMs: 80, closeTimeoutMs: 1000 };

/** A database in a test: answers by a script, records every line it stored. */
class FakeDb implements WriterSink {
  readonly where = 'fake';
  stored: string[] = [];
  sends = 0;
  schemaCalls = 0;
  answer: (body: string) => WriteOutcome | 'hang' = () => ({ kind: 'stored', refused: 0 });
  private hung: (() => void)[] = [];

  async send(body: Buffer): Promise<WriteOutcome> {
    this.sends++;
    const text = body.toString();
    const a = this.answer(text);
    if (a === 'hang') {
      return new Promise((resolve) => this.hung.push(() => resolve({ kind: 'retry', error: new StorageError('STORAGE_TIMEOUT', 'hung') })));
    }
    if (a.kind === 'stored') this.stored.push(...text.split('\n').filter((l) => l !== ''));
    return a;
  }

  async ensureSchema(): Promise<void> {
    this.schemaCalls++;
  }

  /** Lets hung requests fail (as a timeout would). */
  release(): void {
    for (const r of this.hung.splice(0)) r();
  }

  close(): void {
    this.release();
  }
}

const dirs: string[] = [];
const writers: BatchWriter[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const w of writers.splice(0)) await w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function make(db: FakeDb, opts: Partial<WriterOptions> = {}, dir?: string): Promise<{ w: BatchWriter; spill: Spill; dir: string }> {
  if (!dir) {
    dir = tempDir('writer-');
    dirs.push(dir);
  }
  const spill = new Spill(dir, 1 << 20, 4096);
  await spill.open();
  const w = new BatchWriter(db, spill, { ...OPTS, ...opts });
  writers.push(w);
  w.start();
  return { w, spill, dir };
}

const line = (i: number) => `m,device=d c1=${i} ${i}\n`;
function put(w: BatchWriter, from: number, to: number): number {
  let t = 0;
  for (let i = from; i < to; i++) t = w.add(line(i), 1, 0);
  return t;
}
const times = (db: FakeDb) => db.stored.map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));

describe('BatchWriter', () => {
  it('sends batches by size and by interval, and settles every ticket in order', async () => {
    const db = new FakeDb();
    const { w } = await make(db);
    const seen: number[] = [];
    w.onDurable((t) => seen.push(t));
    let inside = false;
    w.onDurable(() => expect(inside).toBe(false));
    inside = true;
    const last = put(w, 0, 250);
    inside = false;
    expect(last).toBe(250);
    expect(w.durableTicket).toBe(0); // nothing is durable while only in memory
    await waitFor(() => w.durableTicket === 250, 'all tickets durable', 2000, 2);
    expect(times(db)).toEqual([...Array(250).keys()]);
    expect(db.sends).toBe(3); // 100 + 100 by size, 50 by interval
    expect(seen.at(-1)).toBe(250);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(w.written).toBe(250);
    expect(w.status().status).toBe('ok');
    // A write with no points still gets a ticket that settles.
    const empty = w.add('', 0, 0);
    await waitFor(() => w.durableTicket === empty, 'the empty write', 1000, 2);
  });

  it('backs off exponentially with jitter while the database fails, then sends the same data again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const db = new FakeDb();
    let failing = true;
    db.answer = () => (failing ? { kind: 'retry', error: new StorageError('STORAGE_UNREACHABLE', 'ECONNREFUSED') } : { kind: 'stored', refused: 0 });
    const { w } = await make(db, { maxInFlight: 1, retryInitialMs: 100, retryMaxMs: 800 });
    put(w, 0, 100);
    const sendsAt: number[] = [];
    let prev = 0;
    for (let ms = 0; ms < 5000; ms += 10) {
      await vi.advanceTimersByTimeAsync(10);
      await new Promise((r) => setImmediate(r));
      if (db.sends !== prev) sendsAt.push(ms);
      prev = db.sends;
    }
    const gaps = sendsAt.slice(1).map((t, i) => t - sendsAt[i]!);
    // Delays of 50–100, 100–200, 200–400, then 400–800 ms (the cap), give or take a tick.
    expect(gaps[0]).toBeGreaterThanOrEqual(40);
    expect(gaps[0]).toBeLessThanOrEqual(120);
    expect(gaps[2]).toBeGreaterThanOrEqual(190);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(820);
    expect(w.retried).toBe(db.sends);
    expect(w.status()).toMatchObject({ status: 'degraded' });
    expect(w.status().detail).toMatch(/STORAGE_UNREACHABLE/);
    expect(w.durableTicket).toBe(0);
    failing = false;
    await vi.advanceTimersByTimeAsync(1000);
    await new Promise((r) => setImmediate(r));
    expect(times(db)).toEqual([...Array(100).keys()]);
    expect(w.durableTicket).toBe(100);
    expect(w.status().status).toBe('ok');
  });

  it('splits a refused request until the bad points are alone, storing every other point once', async () => {
    const db = new FakeDb();
    const bad = new Set([3, 4, 57, 99]);
    db.answer = (body) => (body.split('\n').some((l) => l && bad.has(Number(l.slice(l.lastIndexOf(' ') + 1)))) ? { kind: 'refused', error: new StorageError('STORAGE_REJECTED', 'field type conflict') } : { kind: 'stored', refused: 0 });
    const { w } = await make(db);
    const last = put(w, 0, 100);
    await waitFor(() => w.durableTicket === last, 'everything settled', 3000, 2);
    expect(w.rejected).toBe(4);
    expect(w.retried).toBe(0);
    expect(times(db).sort((a, b) => a - b)).toEqual([...Array(100).keys()].filter((i) => !bad.has(i)));
    expect(w.lastError?.code).toBe('STORAGE_REJECTED');
  });

  it('counts the refused points of a partial write and goes on', async () => {
    const db = new FakeDb();
    db.answer = () => ({ kind: 'stored', refused: 3, error: new StorageError('STORAGE_PARTIAL_WRITE', 'partial write: field type conflict dropped=3') });
    const { w } = await make(db);
    const last = put(w, 0, 100);
    await waitFor(() => w.durableTicket === last, 'settled', 2000, 2);
    expect([w.written, w.rejected, db.sends]).toEqual([97, 3, 1]);
  });

  it('creates the database again when it is gone, then resends', async () => {
    const db = new FakeDb();
    let gone = true;
    db.answer = () => (gone ? { kind: 'retry', schema: true, error: new StorageError('STORAGE_DB_NOT_FOUND', 'database not found') } : { kind: 'stored', refused: 0 });
    const origSchema = db.ensureSchema.bind(db);
    db.ensureSchema = async () => {
      await origSchema();
      gone = false;
    };
    const { w } = await make(db);
    const last = put(w, 0, 10);
    await waitFor(() => w.durableTicket === last, 'settled', 2000, 2);
    expect(db.schemaCalls).toBe(1);
    expect(times(db)).toEqual([...Array(10).keys()]);
  });

  it('while the database hangs, acks only what reached the spill; afterwards drains the spill first, in order', async () => {
    const db = new FakeDb();
    let hang = true;
    db.answer = () => (hang ? 'hang' : { kind: 'stored', refused: 0 });
    const { w, spill } = await make(db, { bufferPoints: 150, spillAfterMs: 100 });
    put(w, 0, 120);
    await new Promise((r) => setTimeout(r, 50));
    expect(w.durableTicket).toBe(0); // under the bound and younger than spillAfterMs: in memory, not durable
    put(w, 120, 300);
    await waitFor(() => w.durableTicket >= 200, 'spilled points to become durable', 2000, 2);
    expect(spill.pendingPoints).toBeGreaterThanOrEqual(w.durableTicket); // every durable point is on disk
    await waitFor(() => w.durableTicket === 300, 'the rest spilled by age', 2000, 2);
    expect(w.buffered).toBe(0);
    hang = false;
    db.release();
    put(w, 300, 350); // newer points wait behind the spill
    await waitFor(() => w.durableTicket === 350 && spill.pendingPoints === 0 && w.buffered === 0, 'the drain', 5000, 2);
    const got = times(db);
    expect([...new Set(got)].sort((a, b) => a - b)).toEqual([...Array(350).keys()]);
    // Spill first, then memory: once a point of 300.. arrived, no older point arrives after it (two in flight may swap neighbours).
    const firstNew = got.findIndex((t) => t >= 300);
    expect(got.slice(firstNew).filter((t) => t < 200)).toEqual([]);
  });

  it('close() spills what the database did not take, and a new writer drains it', async () => {
    const db = new FakeDb();
    db.answer = () => 'hang';
    const { w, dir } = await make(db, { closeTimeoutMs: 100 });
    const last = put(w, 0, 500);
    await w.close();
    expect(w.durableTicket).toBe(last);
    expect(w.lost).toBe(0);
    const db2 = new FakeDb();
    const { w: w2, spill } = await make(db2, {}, dir);
    expect(spill.pendingPoints).toBe(500);
    await waitFor(() => spill.pendingPoints === 0, 'the drain', 3000, 2);
    expect(times(db2)).toEqual([...Array(500).keys()]);
    expect(w2.written).toBe(500);
    // Writes after close are counted as lost, never thrown, and never settled (no ack covers them).
    let late = 0;
    expect(() => (late = w.add(line(1), 1, 0))).not.toThrow();
    expect(w.lost).toBe(1);
    expect(w.durableTicket).toBeLessThan(late);
    expect(await w.whenDurable(late, 10)).toBe(false);
  });
});
