/**
 * The record log under the cursor file and the command journal: checksums catch torn lines, short
 * writes are cut back and reported, failures refuse instead of throwing, and recovery rewrites.
 * The disk here is real, but "full" is injected through the record log's fs seam (a unit test
 * cannot mount a file system); test/integration/disk-full.test.ts fills a real tmpfs instead.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandJournal } from '../../gateway/commands/journal.js';
import type { CommandRecord } from '../../gateway/commands/command.js';
import { CursorStore } from '../../gateway/cursors.js';
import { FileWriteError } from '../../gateway/files/file-error.js';
import { encodeRecord, RecordLog, type RecordFs } from '../../gateway/files/record-log.js';
import { tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
const closers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('record-log-');
  dirs.push(d);
  return d;
}

/** node:fs with a disk that takes `room` more bytes (Infinity: unlimited), then says ENOSPC; short writes included. */
function disk(): RecordFs & { room: number; fsyncFails: boolean } {
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const d: RecordFs & { room: number; fsyncFails: boolean } = {
    ...fs,
    room: Infinity,
    fsyncFails: false,
    // The record log always passes (fd, buffer, offset, length).
    writeSync: ((fd: number, buf: Buffer, off: number, len: number) => {
      if (d.room <= 0) throw enospc();
      const n = fs.writeSync(fd, buf, off, Math.min(len, d.room));
      d.room -= n;
      return n;
    }) as typeof fs.writeSync,
    fsyncSync: (fd: number) => {
      if (d.fsyncFails) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      fs.fsyncSync(fd);
    },
    statfsSync: ((p: string) => {
      const st = fs.statfsSync(p);
      return d.room === Infinity ? st : { ...st, bfree: Math.floor(d.room / st.bsize) };
    }) as typeof fs.statfsSync,
  };
  return d;
}

function read(path: string): string {
  return fs.readFileSync(path, 'utf8');
}

function loadAll(log: RecordLog): { payloads: string[]; legacy: string[]; damaged: number } {
  const payloads: string[] = [];
  const legacy: string[] = [];
  const r = log.load(
    (p) => (payloads.push(p), true),
    (l) => (legacy.push(l), true),
  );
  return { payloads, legacy, damaged: r.damaged };
}

describe('record log', () => {
  it('reads back what it wrote, and ignores a line cut short instead of reading a smaller value', () => {
    const path = join(dir(), 'x.log');
    const whole = encodeRecord('dev\t0\t123456');
    const next = encodeRecord('dev\t0\t123457');
    // Cut inside the digits, once at the end of the file and once followed by a later record.
    fs.writeFileSync(path, whole + next.slice(0, next.length - 4) + '\n' + encodeRecord('other\t1\t5') + next.slice(0, next.length - 3));
    const got = loadAll(new RecordLog(path, { consequence: 'test' }));
    expect(got.payloads).toEqual(['dev\t0\t123456', 'other\t1\t5']);
    expect(got.damaged).toBe(2);
  });

  it('hands lines of the format before checksums to the legacy parser, but not a torn last one', () => {
    const path = join(dir(), 'x.log');
    fs.writeFileSync(path, 'dev\t0\t12\n' + encodeRecord('dev\t0\t13') + 'dev\t0\t1');
    const got = loadAll(new RecordLog(path, { consequence: 'test' }));
    expect(got.legacy).toEqual(['dev\t0\t12']);
    expect(got.payloads).toEqual(['dev\t0\t13']);
    expect(got.damaged).toBe(1);
  });

  it('cuts a short write back to the last whole record, reports it, refuses until the disk takes a rewrite, then holds the snapshot', async () => {
    const path = join(dir(), 'x.log');
    const d = disk();
    let state = ['a'];
    const log = new RecordLog(path, { consequence: 'test', fs: d, retryMs: 10 });
    closers.push(log);
    expect(log.open(() => state)).toBe(true);
    expect(log.append(encodeRecord('b'))).toBe(true);
    const before = read(path);
    d.room = 5; // the next append gets 5 of its bytes in, then ENOSPC
    state = ['a', 'b', 'c'];
    expect(log.append(encodeRecord('c'))).toBe(false);
    expect(read(path)).toBe(before);
    expect(log.failure).toBeInstanceOf(FileWriteError);
    expect(log.failure).toMatchObject({ code: 'FILE_WRITE_FAILED', errno: 'ENOSPC', path, noSpace: true });
    expect(log.failure!.message).toContain(path);
    // While failing, nothing is appended, not even an empty round.
    expect(log.append(encodeRecord('d'))).toBe(false);
    expect(log.append('')).toBe(false);
    expect(log.refused).toBe(2);
    d.room = Infinity;
    await waitFor(() => log.failure === undefined, 'the log to recover');
    expect(loadAll(new RecordLog(path, { consequence: 'test' })).payloads).toEqual(['a', 'b', 'c']);
    expect(log.append(encodeRecord('e'))).toBe(true);
    expect(loadAll(new RecordLog(path, { consequence: 'test' })).payloads).toEqual(['a', 'b', 'c', 'e']);
  });

  it('treats a failed fsync as a failure and recovers by rewriting', async () => {
    const path = join(dir(), 'x.log');
    const d = disk();
    const log = new RecordLog(path, { consequence: 'test', fs: d, retryMs: 10 });
    closers.push(log);
    log.open(() => ['a', 'b']);
    expect(log.append(encodeRecord('b'))).toBe(true);
    d.fsyncFails = true;
    expect(log.sync()).toBe(false);
    expect(log.failure).toMatchObject({ errno: 'EIO', noSpace: false, op: 'fsync' });
    d.fsyncFails = false;
    await waitFor(() => log.failure === undefined, 'the log to recover');
    expect(loadAll(new RecordLog(path, { consequence: 'test' })).payloads).toEqual(['a', 'b']);
  });

  it('keeps appending to the old file when a compaction does not fit', () => {
    const path = join(dir(), 'x.log');
    const d = disk();
    const log = new RecordLog(path, { consequence: 'test', fs: d, retryMs: 60_000 });
    closers.push(log);
    log.open(() => ['a'.repeat(100)]);
    d.room = 50;
    expect(log.compact()).toBe(false);
    expect(log.failure).toBeUndefined();
    expect(log.append(encodeRecord('b'))).toBe(true);
    expect(loadAll(new RecordLog(path, { consequence: 'test' })).payloads).toEqual(['a'.repeat(100), 'b']);
  });
});

describe('cursor store', () => {
  it('loads a cursor file of the previous version and rewrites it with checksums', () => {
    const d = dir();
    fs.writeFileSync(join(d, 'cursors.log'), 'dev-1\t0\t100\ndev-2\t3\t7\ndev-1\t0\t101\ndev-3\t0\t99');
    const store = new CursorStore(d);
    closers.push(store);
    expect(Object.fromEntries(store.open())).toEqual({ 'dev-1': { epoch: 0, contig: 101 }, 'dev-2': { epoch: 3, contig: 7 } });
    expect(read(join(d, 'cursors.log')).split('\n').filter(Boolean).every((l) => l.startsWith('='))).toBe(true);
  });

  it('starts on a full disk: nothing thrown, cursors loaded, appends false until the file is rewritten with them', async () => {
    const d = dir();
    fs.writeFileSync(join(d, 'cursors.log'), encodeRecord('dev-1\t0\t100'));
    const disk0 = disk();
    disk0.room = 0;
    const store = new CursorStore(d, { fs: disk0, retryMs: 10 });
    closers.push(store);
    expect(store.open().get('dev-1')).toEqual({ epoch: 0, contig: 100 });
    expect(store.failure).toMatchObject({ errno: 'ENOSPC', path: join(d, 'cursors.log') });
    expect(store.append(store.set('dev-1', 0, 150))).toBe(false);
    expect(store.append('')).toBe(false);
    disk0.room = Infinity;
    await waitFor(() => store.failure === undefined, 'the cursor file to recover');
    expect(store.append('')).toBe(true);
    const again = new CursorStore(d);
    closers.push(again);
    expect(again.open().get('dev-1')).toEqual({ epoch: 0, contig: 150 });
  });
});

describe('command journal', () => {
  it('refuses to persist a command while it cannot write, and carries what it kept once it can', async () => {
    const d = dir();
    const disk0 = disk();
    const journal = new CommandJournal(d, { fs: disk0, retryMs: 10 });
    closers.push(journal);
    const rec = (id: string): CommandRecord => ({ id, deviceId: 'dev', name: 'x', args: null, state: 'queued', createdAt: 1, expiresAt: 2, timeoutMs: 100, history: [] });
    const kept: CommandRecord[] = [rec('one')];
    journal.open(() => kept);
    disk0.room = 0;
    expect(() => journal.persist(rec('two'))).toThrow(FileWriteError);
    expect(() => journal.persist(rec('two'))).toThrow(/ENOSPC/);
    kept[0]!.state = 'sent';
    expect(journal.append(kept[0]!)).toBe(false);
    disk0.room = Infinity;
    await waitFor(() => journal.failure === undefined, 'the journal to recover');
    journal.persist(rec('three'));
    const loaded = new CommandJournal(d).load();
    expect([...loaded.keys()]).toEqual(['one', 'three']);
    expect(loaded.get('one')!.state).toBe('sent');
  });

  it('loads a journal of the previous version (plain JSON lines)', () => {
    const d = dir();
    fs.writeFileSync(join(d, 'commands.jsonl'), JSON.stringify({ id: 'a', deviceId: 'dev', state: 'queued' }) + '\n{"id":"b","dev');
    expect([...new CommandJournal(d).load().keys()]).toEqual(['a']);
  });
});
