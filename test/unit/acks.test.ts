/**
 * The ack ledger with real ingest, real memory storage and a real cursor file. The device link is a
 * recorder (the ledger's only seam toward a socket), and the storage's settled ticket is held by the
 * test, so "not settled yet" can be shown. A failing cursor write is injected by overriding
 * CursorStore.append to return false, which is what it returns on ENOSPC, EIO or a short write.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeTelemetry, FrameFlag, FrameType, type AckFrame } from '../../devices/codec/index.js';
import { ACK_SLICE, AckLedger } from '../../gateway/acks.js';
import { CursorStore } from '../../gateway/cursors.js';
import { DeviceState, type DeviceLink } from '../../gateway/devices.js';
import { Ingest } from '../../gateway/ingest.js';
import { MemoryStorage } from '../../gateway/storage/memory.js';

class Recorder implements DeviceLink {
  readonly transport = 'ws';
  readonly remoteAddress = 'test';
  readonly acks: AckFrame[] = [];
  send(bytes: Uint8Array): 'sent' {
    const f = decodeFrame(bytes);
    if (!(f instanceof Error) && f.type === FrameType.Ack) this.acks.push(f as AckFrame);
    return 'sent';
  }
  close(): void {}
  bufferedAmount(): number {
    return 0;
  }
}

class FlakyCursors extends CursorStore {
  fail = false;
  override append(entries: string): boolean {
    return this.fail ? false : super.append(entries);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: { ranges?: boolean; dir?: string; stretch?: { above: number; frames: number; maxDelayMs: number } } = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'acks-test-'));
  if (!opts.dir) dirs.push(dir);
  const storage = new MemoryStorage(100);
  const settled = { durableTicket: 0 };
  const ingest = new Ingest(storage, { maxFrameBytes: 4096, maxReadings: 64 });
  const cursors = new FlakyCursors(dir);
  const ledger = new AckLedger(ingest, cursors, settled, { intervalMs: 50, sendBudget: 1 << 20, ranges: opts.ranges ?? false, ...(opts.stretch ? { stretch: opts.stretch } : {}) });
  const devices = new Map<string, DeviceState>();
  const device = (id: string) => {
    let d = devices.get(id);
    if (!d) devices.set(id, (d = new DeviceState(id, undefined)));
    return d;
  };
  ledger.restore(device);
  const d = device('dev-1');
  const link = new Recorder();
  d.link = link;
  d.online = true;
  const frame = (epoch: number, seq: number) => {
    expect(ingest.handle(d, encodeTelemetry({ epoch, seq, timestamp: 1_700_000_000_000 + seq }, [{ channel: 1, value: seq }]), Date.now())).toBeUndefined();
  };
  return { dir, storage, settled, ingest, cursors, ledger, device, d, link, frame };
}

const cursorFile = (dir: string) => readFileSync(join(dir, 'cursors.log'), 'utf8');

describe('AckLedger', () => {
  it('acks only what storage settled, and only after its cursor reached the file', () => {
    const t = setup();
    t.frame(7, 1);
    t.frame(7, 2);
    t.ledger.flush(1);
    expect(t.link.acks).toEqual([]);
    t.frame(7, 3);
    t.settled.durableTicket = 2;
    t.ledger.flush(2);
    expect(t.link.acks.map((a) => [a.epoch, a.seq])).toEqual([[7, 2]]);
    expect(cursorFile(t.dir)).not.toContain('dev-1\t7\t3');
    t.settled.durableTicket = 3;
    t.ledger.flush(3);
    expect(t.link.acks.map((a) => [a.epoch, a.seq])).toEqual([
      [7, 2],
      [7, 3],
    ]);
    expect(cursorFile(t.dir)).toContain('dev-1\t7\t3\n');
    expect(t.d.toJSON().ackedSeq).toBe(3);
  });

  it('sends none of the acks whose cursor write failed, and sends them once a later flush writes it', () => {
    const t = setup();
    t.frame(7, 1);
    t.frame(7, 2);
    t.settled.durableTicket = 2;
    t.cursors.fail = true;
    t.ledger.flush(1);
    t.ledger.flush(2);
    expect(t.link.acks).toEqual([]);
    expect(t.ledger.cursorFailures).toBe(2);
    expect(cursorFile(t.dir)).not.toContain('dev-1');
    t.cursors.fail = false;
    t.ledger.flush(3);
    expect(t.link.acks.map((a) => a.seq)).toEqual([2]);
    expect(cursorFile(t.dir)).toContain('dev-1\t7\t2\n');
  });

  it('restores cursors into dedupe state: a frame acked before a restart comes back as a duplicate and is re-acked', () => {
    const a = setup();
    for (let s = 1; s <= 5; s++) a.frame(3, s);
    a.settled.durableTicket = 5;
    a.ledger.flush(1);
    a.cursors.close();
    const b = setup({ dir: a.dir });
    dirs.push(a.dir);
    expect(b.d.toJSON().ackedSeq).toBe(5);
    b.frame(3, 4);
    expect(b.d.duplicates).toBe(1);
    expect(b.storage.durableTicket).toBe(0);
    b.ledger.flush(1);
    expect(b.link.acks.map((f) => [f.epoch, f.seq])).toEqual([[3, 5]]);
  });

  it('acks frames of the previous boot by their own epoch, also when the new boot follows within one interval (issue 15 point 1)', () => {
    const t = setup();
    // Kept across a reboot: epoch 7's frames are resent first, then epoch 8 starts, all in one interval.
    for (let s = 0; s <= 2; s++) t.frame(7, s);
    t.frame(8, 0);
    t.frame(8, 1);
    t.settled.durableTicket = 5;
    t.ledger.flush(1);
    expect(t.link.acks.map((a) => [a.epoch, a.seq])).toEqual([
      [7, 2],
      [8, 1],
    ]);
    // The cursor file records the newest boot only.
    expect(cursorFile(t.dir)).toContain('dev-1\t8\t1\n');
    // A late frame of the old boot, and a resend of one already stored (its ack was lost): each acked by epoch 7.
    t.frame(7, 3);
    t.frame(7, 1);
    t.settled.durableTicket = 6;
    t.ledger.flush(2);
    expect(t.link.acks.slice(2).map((a) => [a.epoch, a.seq])).toEqual([
      [7, 3],
      [8, 1],
    ]);
    expect(t.d.duplicates).toBe(1);
  });

  it('re-acks a resent frame of the old boot by its epoch when the new boot starts in the same interval', () => {
    const t = setup();
    for (let s = 0; s <= 2; s++) t.frame(7, s);
    t.settled.durableTicket = 3;
    t.ledger.flush(1);
    // The device rebooted without the ack of 2 (kept it), resends it, and its new boot follows at once.
    t.frame(7, 2);
    t.frame(8, 0);
    t.settled.durableTicket = 4;
    t.ledger.flush(2);
    expect(t.link.acks.map((a) => [a.epoch, a.seq])).toEqual([
      [7, 2],
      [7, 2],
      [8, 0],
    ]);
  });

  it('moves the ack when a resend carrying GapBefore gives up the missing seqs (issue 15 point 2)', () => {
    const t = setup();
    for (const s of [1, 2, 3, 5, 6]) t.frame(7, s);
    t.settled.durableTicket = 5;
    t.ledger.flush(1);
    expect(t.link.acks.map((a) => a.seq)).toEqual([3]);
    expect(t.ingest.handle(t.d, encodeTelemetry({ epoch: 7, seq: 5, timestamp: 1_700_000_000_005, flags: FrameFlag.GapBefore }, [{ channel: 1, value: 5 }]), Date.now())).toBeUndefined();
    t.ledger.flush(2);
    expect(t.link.acks.map((a) => a.seq)).toEqual([3, 6]);
    expect(cursorFile(t.dir)).toContain('dev-1\t7\t6\n');
  });

  it('bridge mode: range-acks exactly the seqs taken, once settled', () => {
    const t = setup({ ranges: true });
    t.frame(1, 10);
    t.frame(1, 11);
    t.frame(1, 13);
    t.settled.durableTicket = 3;
    t.ledger.flush(1);
    expect(t.link.acks.map((f) => [f.firstSeq, f.seq])).toEqual([
      [10, 11],
      [13, 13],
    ]);
  });

  it('bridge mode: each range ack carries the epoch of its frames across a reboot', () => {
    const t = setup({ ranges: true });
    t.frame(1, 10);
    t.frame(1, 11);
    t.frame(2, 0);
    t.settled.durableTicket = 3;
    t.ledger.flush(1);
    expect(t.link.acks.map((f) => [f.epoch, f.firstSeq, f.seq])).toEqual([
      [1, 10, 11],
      [2, 0, 0],
    ]);
  });

  it("adopts another instance's cursor: replays of what it stored are duplicates here, and acks here cover them", () => {
    const t = setup();
    t.ledger.adopt(t.d, { epoch: 4, contig: 10 }, false);
    expect(t.ledger.position(t.d)).toEqual({ epoch: 4, contig: 10 });
    t.frame(4, 9);
    expect(t.d.duplicates).toBe(1);
    t.frame(4, 11);
    t.settled.durableTicket = 1;
    t.ledger.flush(1);
    expect(t.link.acks.map((f) => [f.epoch, f.seq])).toEqual([[4, 11]]);
    // An older cursor moves nothing back.
    t.ledger.adopt(t.d, { epoch: 4, contig: 5 }, false);
    expect(t.ledger.position(t.d)).toEqual({ epoch: 4, contig: 11 });
  });

  it('under load, a slow sender\'s ack is stretched to cover several frames, at most maxDelayMs late; replays are acked at once', () => {
    // above: 0, so any ack due in the previous flush makes the next one stretch.
    const t = setup({ stretch: { above: 0, frames: 3, maxDelayMs: 1000 } });
    const acked = () => t.link.acks.map((a) => a.seq);
    t.frame(7, 1);
    t.settled.durableTicket = Infinity;
    t.ledger.flush(0); // nothing was due before: not stretched
    expect(acked()).toEqual([1]);
    t.frame(7, 2);
    t.ledger.flush(50);
    t.ledger.flush(100);
    expect(acked()).toEqual([1]); // held: 1 frame of 3, waited < 1000 ms
    t.frame(7, 3);
    t.frame(7, 4);
    t.ledger.flush(150);
    expect(acked()).toEqual([1, 4]); // one ack for 3 frames
    t.frame(7, 5);
    t.ledger.flush(200);
    expect(acked()).toEqual([1, 4]);
    t.ledger.flush(1149);
    expect(acked()).toEqual([1, 4]);
    t.ledger.flush(1150); // its frame came at the flush of 150: 1000 ms ago
    expect(acked()).toEqual([1, 4, 5]);
    t.frame(7, 6);
    t.ledger.flush(1200);
    expect(acked()).toEqual([1, 4, 5]);
    // The device resends 6 (it did not get an ack, e.g. after a reconnect): acked at the next flush.
    expect(t.ingest.handle(t.d, encodeTelemetry({ epoch: 7, seq: 6, timestamp: 1_700_000_000_006 }, [{ channel: 1, value: 6 }]), Date.now())).toBeUndefined();
    t.ledger.flush(1250);
    expect(acked()).toEqual([1, 4, 5, 6]);
    // Shutdown's final flush sends whatever is held.
    t.frame(7, 7);
    t.ledger.flush(1300, true);
    expect(acked()).toEqual([1, 4, 5, 6, 7]);
  });

  it("writes a stretched ack's cursor line with the ack, not before: one line per ack, never behind it", () => {
    const t = setup({ stretch: { above: 0, frames: 3, maxDelayMs: 1000 } });
    const lines = () => [...cursorFile(t.dir).matchAll(/dev-1\t\d+\t\d+\n/g)].map((m) => m[0].trim());
    t.settled.durableTicket = Infinity;
    t.frame(7, 1);
    t.ledger.flush(0); // not stretched yet
    expect(lines()).toEqual(['dev-1\t7\t1']);
    t.frame(7, 2);
    t.ledger.flush(50);
    t.frame(7, 3);
    t.ledger.flush(100);
    expect(t.link.acks.map((a) => a.seq)).toEqual([1]); // held
    expect(lines()).toEqual(['dev-1\t7\t1']); // and so is its cursor line
    t.frame(7, 4);
    t.ledger.flush(150);
    expect(t.link.acks.map((a) => a.seq)).toEqual([1, 4]);
    expect(lines()).toEqual(['dev-1\t7\t1', 'dev-1\t7\t4']);
    // A held device that left: its line is written when its hold ends, though no ack goes out.
    t.frame(7, 5);
    t.ledger.flush(200);
    t.d.link = undefined;
    t.ledger.flush(1250);
    expect(lines().at(-1)).toBe('dev-1\t7\t5');
  });

  it('without load (few acks due), every ack goes out at the next interval', () => {
    const t = setup({ stretch: { above: 100, frames: 8, maxDelayMs: 2000 } });
    t.settled.durableTicket = Infinity;
    for (let seq = 1; seq <= 3; seq++) {
      t.frame(7, seq);
      t.ledger.flush(seq * 50);
    }
    expect(t.link.acks.map((a) => a.seq)).toEqual([1, 2, 3]);
  });

  it('sends a big flush a slice per loop turn, so frames that arrive meanwhile are not held up; a new flush finishes the last one first', async () => {
    const t = setup();
    t.settled.durableTicket = Infinity;
    const links: Recorder[] = [];
    const n = ACK_SLICE * 2 + 5;
    for (let i = 0; i < n; i++) {
      const d = t.device(`dev-s${i}`);
      const link = new Recorder();
      d.link = link;
      d.online = true;
      links.push(link);
      expect(t.ingest.handle(d, encodeTelemetry({ epoch: 3, seq: 1, timestamp: 1_700_000_000_000 }, [{ channel: 1, value: i }]), Date.now())).toBeUndefined();
    }
    const flushed: number[] = [];
    t.ledger.onFlushed((now) => flushed.push(now));
    const acked = () => links.filter((l) => l.acks.length > 0).length;
    t.ledger.flush(50);
    // Every cursor line is in the file before the first ack goes out.
    for (let i = 0; i < n; i++) expect(cursorFile(t.dir)).toContain(`dev-s${i}\t3\t1\n`);
    expect(acked()).toBe(ACK_SLICE);
    expect(flushed).toEqual([]);
    // A frame taken between the slices is not covered by the ack the device gets in a later slice.
    const late = t.device(`dev-s${n - 1}`);
    expect(t.ingest.handle(late, encodeTelemetry({ epoch: 3, seq: 2, timestamp: 1_700_000_000_001 }, [{ channel: 1, value: 1 }]), Date.now())).toBeUndefined();
    await new Promise<void>((r) => setImmediate(r));
    expect(acked()).toBe(ACK_SLICE * 2);
    // The next interval's flush sends what is left of the last one before anything of its own.
    t.ledger.flush(100);
    expect(acked()).toBe(n);
    expect(flushed).toEqual([50, 100]);
    // The late frame's ack came from the second flush, after the first one's.
    expect(links[n - 1]!.acks.map((a) => a.seq)).toEqual([1, 2]);
    expect(links.slice(0, n - 1).every((l) => l.acks.length === 1)).toBe(true);
  });
});
