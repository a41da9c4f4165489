/**
 * The writer's parts on their own: tickets and whenDurable (batches.ts), the retry clock on the
 * shared backoff (retry.ts), the spill feed's present-tense full/failing states (spill-feed.ts),
 * the status text (writer-status.ts), retention durations (retention.ts), and admission (writer.ts).
 */
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff } from '../../devices/sdk/backoff.js';
import { silentLogger } from '../../gateway/log.js';
import { Batch, Batches } from '../../gateway/storage/batches.js';
import { StorageError } from '../../gateway/storage/errors.js';
import type { WriteOutcome } from '../../gateway/storage/influx-http.js';
import { durationMs } from '../../gateway/storage/retention.js';
import { RetryClock } from '../../gateway/storage/retry.js';
import { Spill, type SpillItem } from '../../gateway/storage/spill.js';
import { SpillFeed } from '../../gateway/storage/spill-feed.js';
import { BatchWriter } from '../../gateway/storage/writer.js';
import { writerStatus, type WriterState } from '../../gateway/storage/writer-status.js';
import { tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fill(b: Batches, points: number): number {
  const text = 'm c=1 1\n'.repeat(points);
  b.open.ensure(text.length);
  b.open.len += b.open.buf.write(text, b.open.len);
  return b.commit(points);
}

describe('Batches', () => {
  it('moves durableTicket only over settled batches at the head, in order', () => {
    const b = new Batches();
    fill(b, 2);
    b.seal(0);
    const t2 = fill(b, 3);
    b.seal(0);
    const [first, second] = b.queue as [Batch, Batch];
    expect(b.buffered).toBe(5);
    b.settle(second);
    b.advance();
    expect(b.durableTicket).toBe(0); // the older batch is not safe yet
    b.settle(first);
    b.advance();
    expect(b.durableTicket).toBe(t2);
    expect(b.buffered).toBe(0);
  });

  it('whenDurable resolves true once the ticket settles, false at its timeout or when woken at close', async () => {
    const b = new Batches();
    const t = fill(b, 1);
    b.seal(0);
    const settled = b.whenDurable(t, 5000);
    const timedOut = b.whenDurable(t + 1, 20);
    expect(await timedOut).toBe(false);
    b.settle(b.queue[0]!);
    b.advance();
    expect(await settled).toBe(true);
    expect(await b.whenDurable(t, 0)).toBe(true); // already durable
    const never = b.whenDurable(t + 5, 60_000);
    b.wake(true);
    expect(await never).toBe(false);
  });

  it('a write with no points settles with its batch at once', () => {
    const b = new Batches();
    const t = b.commit(0);
    b.seal(0);
    expect(b.durableTicket).toBe(t);
  });
});

describe('RetryClock', () => {
  it('waits one equal-jitter backoff step per failure (never near 0), and starts over when the database answers', () => {
    vi.useFakeTimers();
    let woken = 0;
    const r = new RetryClock({ retryInitialMs: 100, retryMaxMs: 400 }, () => woken++, () => 0);
    const now = Date.now();
    expect(r.failing).toBe(false);
    r.failed(now);
    expect(r.failing).toBe(true);
    expect(r.waiting(now + 49)).toBe(true); // random 0: half of 100
    expect(r.waiting(now + 50)).toBe(false);
    r.failed(now);
    r.failed(now);
    r.failed(now); // 100, 200, 400, then capped at 400: at least 200
    expect(r.waiting(now + 199)).toBe(true);
    vi.advanceTimersByTime(400);
    expect(woken).toBeGreaterThan(0);
    expect(r.recovered(now + 1000)).toBe(1000);
    expect(r.failing).toBe(false);
    expect(r.waiting(now + 1000)).toBe(false);
    r.stop();
  });

  it('shares the SDK backoff: full jitter by default, equal jitter on request', () => {
    const full = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    const equal = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0, jitter: 'equal' });
    expect([full.next(), full.next()]).toEqual([0, 0]);
    expect([equal.next(), equal.next(), equal.next()]).toEqual([50, 100, 200]);
  });
});

describe('SpillFeed', () => {
  it('"full" is re-checked against the bound each time: space comes back as the spill drains', async () => {
    const dir = tempDir('feed-');
    dirs.push(dir);
    const spill = new Spill(dir, 64 * 1024, 64 * 1024);
    await spill.open();
    let done = 0;
    const feed = new SpillFeed(spill, silentLogger(), () => {}, () => done++);
    const big = (n: number) => new Batch(Buffer.alloc(20_000, 0x61), n, n, 0);
    const settled: Batch[] = [];
    const take = [big(1), big(2), big(3), big(4)];
    feed.move(take, (b) => settled.push(b), 0);
    await waitFor(() => done === 1, 'the append');
    expect(settled.length).toBe(3); // 3 × 20 KB fit in 64 KiB, the 4th not
    expect(feed.full).toBe(true);
    expect(feed.unavailable).toBe(true);
    // The database confirms the records (bytes count whole files: a drained segment frees its
    // space): now the 4th fits, and the feed says so without another append.
    for (let i = 0; i < 2; i++) await spill.confirm((await spill.readNext())!);
    expect(feed.full).toBe(true);
    await spill.confirm((await spill.readNext())!);
    expect(feed.full).toBe(false);
    expect(feed.unavailable).toBe(false);
    await spill.close();
  });

  it('a failing spill clears when a probe succeeds again, and only then', async () => {
    const dir = tempDir('feed-');
    dirs.push(dir);
    const spill = new Spill(dir, 1 << 20);
    await spill.open();
    let failing = true;
    const realAppend = spill.append.bind(spill);
    spill.append = (items: readonly SpillItem[]) => (failing ? Promise.reject(new StorageError('STORAGE_SPILL_IO', 'ENOSPC: no space left on device')) : realAppend(items));
    const realProbe = spill.probe.bind(spill);
    spill.probe = () => (failing ? Promise.reject(new StorageError('STORAGE_SPILL_IO', 'ENOSPC: no space left on device')) : realProbe());
    let done = 0;
    const notes: string[] = [];
    const feed = new SpillFeed(spill, silentLogger(), (e) => notes.push(e.code), () => done++);
    feed.move([new Batch(Buffer.from('m c=1 1\n'), 1, 1, 0)], () => {}, 0);
    await waitFor(() => done === 1, 'the append');
    expect(feed.error?.message).toMatch(/ENOSPC/);
    feed.probe(Date.now()); // too soon: waits a second between tries
    expect(feed.running).toBe(false);
    feed.probe(Date.now() + 1000);
    await waitFor(() => done === 2, 'the failing probe');
    expect(feed.error).toBeDefined();
    failing = false;
    feed.probe(Date.now() + 2000);
    await waitFor(() => done === 3, 'the probe');
    expect(feed.error).toBeUndefined();
    expect(notes).toEqual(['STORAGE_SPILL_IO', 'STORAGE_SPILL_IO']);
    await spill.close();
  });
});

describe('writerStatus', () => {
  const base: WriterState = { where: 'db', failing: false, failingSince: 0, lastErrorCode: undefined, spillError: undefined, spillFull: false, spilledPoints: 0, memPoints: 0, bufferPoints: 100, memCap: 200, refusing: false, needSchema: false };
  it('is ok, degraded or down from the present state only', () => {
    expect(writerStatus(base, 0)).toEqual({ status: 'ok' });
    expect(writerStatus({ ...base, spilledPoints: 5 }, 0)).toEqual({ status: 'degraded', detail: '5 points in the spill file, draining' });
    expect(writerStatus({ ...base, failing: true, failingSince: 0, lastErrorCode: 'STORAGE_TIMEOUT', spillFull: true }, 3000)).toMatchObject({ status: 'down', detail: expect.stringMatching(/failing \(STORAGE_TIMEOUT\) for 3 s; the spill file is full/) });
    const refusing = writerStatus({ ...base, refusing: true, spillFull: true, memPoints: 150 }, 0);
    expect(refusing.status).toBe('down');
    expect(refusing.detail).toMatch(/the spill file is full; memory holds its maximum of 200 points: devices' frames are refused \(STORAGE_FULL\)/);
    // A spill error with the database fine: degraded (the next outage could not spill), not down.
    expect(writerStatus({ ...base, spillError: new StorageError('STORAGE_SPILL_IO', 'ENOSPC') }, 0)).toEqual({ status: 'degraded', detail: 'the spill file fails (ENOSPC)' });
  });
});

describe('retention durations', () => {
  it('reads InfluxQL and Go durations; INF and 0s are forever', () => {
    expect(durationMs('30d')).toBe(30 * 86_400_000);
    expect(durationMs('720h0m0s')).toBe(30 * 86_400_000);
    expect(durationMs('1h30m')).toBe(5_400_000);
    expect(durationMs('52w')).toBe(52 * 604_800_000);
    expect(durationMs('INF')).toBe(0);
    expect(durationMs('0s')).toBe(0);
    expect(() => durationMs('30 days')).toThrow(RangeError);
  });
});

describe('BatchWriter admission', () => {
  it('says no at 2 × bufferPoints while the spill is full, counts each refusal, and yes again once the database takes data', async () => {
    const dir = tempDir('admit-');
    dirs.push(dir);
    const spill = new Spill(dir, 64 * 1024, 64 * 1024);
    await spill.open();
    let hang = true;
    const hung: (() => void)[] = [];
    const sink = {
      where: 'fake',
      send: (): Promise<WriteOutcome> =>
        hang ? new Promise((resolve) => hung.push(() => resolve({ kind: 'retry', error: new StorageError('STORAGE_TIMEOUT', 'hung') }))) : Promise.resolve({ kind: 'stored', refused: 0 }),
      ensureSchema: async () => {},
      close: () => hung.splice(0).forEach((r) => r()),
    };
    const lines: { level: number; msg: string; refused?: number; refusedTotal?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const w = new BatchWriter(sink, spill, { batchPoints: 50, flushMs: 5, maxInFlight: 1, bufferPoints: 100, spillAfterMs: 10, retryInitialMs: 5, retryMaxMs: 20, closeTimeoutMs: 50 }, log);
    w.start();
    const line = 'm,device=d c1=1 1000000000000\n'; // ~30 bytes: 64 KiB of spill holds ~2,000
    let refused = 0;
    let last = 0;
    // First until the spill is full: on a loaded machine a slow fsync makes admit() say no earlier
    // (4 × bufferPoints while the spill only lags), which is not the state this test is about.
    const spillFull = () => /the spill file is full/.test(w.status().detail ?? '');
    for (let k = 0; k < 20_000 && !spillFull(); k++) {
      if (w.admit()) last = w.add(line, 1);
      else refused++;
      if (k % 50 === 49) await new Promise((r) => setTimeout(r, 2));
    }
    expect(spillFull()).toBe(true);
    const before = w.refused;
    expect(before).toBe(refused);
    refused = 0;
    for (let k = 0; k < 20_000 && refused < 10; k++) {
      if (w.admit()) last = w.add(line, 1);
      else refused++;
      if (k % 50 === 49) await new Promise((r) => setTimeout(r, 2));
    }
    expect(refused).toBe(10);
    expect(w.refused).toBe(before + 10);
    expect(w.buffered).toBeGreaterThanOrEqual(200);
    expect(w.lost).toBe(0);
    expect(w.durableTicket).toBeLessThan(last); // what waits in memory is not settled
    expect(w.status().status).toBe('down');
    // Told loudly but once per interval: one aggregated line with the totals, not one per frame.
    await waitFor(() => lines.some((l) => /frames refused/.test(l.msg)), 'the aggregated refusal line', 2000, 5);
    const told = lines.filter((l) => /frames refused/.test(l.msg));
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ level: 50, refusedTotal: expect.any(Number) });
    expect(told[0]!.msg).toMatch(/STORAGE_FULL.*the spill file is full/);
    hang = false;
    for (const r of hung.splice(0)) r(); // as a request timeout would
    await waitFor(() => w.durableTicket === last, 'everything settled once the database answers', 10_000, 5);
    expect(w.admit()).toBe(true);
    expect(w.lost).toBe(0);
    await w.close();
  });
});

describe('BatchWriter.close()', () => {
  it('with the database hanging and the spill full, counts what it could put nowhere as lost and settles none of it', async () => {
    const dir = tempDir('close-');
    dirs.push(dir);
    const spill = new Spill(dir, 64 * 1024, 64 * 1024);
    await spill.open();
    const hung: (() => void)[] = [];
    const sink = {
      where: 'fake',
      send: (): Promise<WriteOutcome> => new Promise((resolve) => hung.push(() => resolve({ kind: 'retry', error: new StorageError('STORAGE_TIMEOUT', 'hung') }))),
      ensureSchema: async () => {},
      close: () => hung.splice(0).forEach((r) => r()),
    };
    const w = new BatchWriter(sink, spill, { batchPoints: 500, flushMs: 5, maxInFlight: 1, bufferPoints: 100_000, spillAfterMs: 60_000, retryInitialMs: 5, retryMaxMs: 20, closeTimeoutMs: 100 });
    w.start();
    const line = 'm,device=d c1=1 1000000000000\n';
    let last = 0;
    for (let i = 0; i < 5000; i++) last = w.add(line, 1); // ~150 KB: more than the 64 KiB spill holds
    await w.close();
    expect(w.lost).toBeGreaterThan(0);
    expect(w.durableTicket).toBeLessThan(last); // no ack may cover what is only lost
    expect(w.durableTicket).toBe(5000 - w.lost); // exactly the spilled prefix is settled
    expect(await w.whenDurable(last, 10)).toBe(false);
  });
});
