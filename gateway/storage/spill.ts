/**
 * The spill: an append-only, size-bounded FIFO of line-protocol batches on disk, for points that
 * cannot reach the database in time. Segment files `<dir>/spill-<seq>.log`, each:
 *
 *   header (32 bytes): "TGSPILL1" | u32 version (1) | u32 header size (32) | u64 read offset | 8 reserved
 *   records:           u32 payload bytes | u32 points | u32 CRC-32 of the payload | payload
 *
 * all little-endian; a payload is newline-terminated line protocol. Records are appended (then
 * fdatasync'd) at the tail segment and read in order from the head segment; the read offset (the
 * first record not yet confirmed by the database) is rewritten in place as records are confirmed, so
 * a restart resends at most the records that were in flight (writes are idempotent). A drained
 * segment is deleted; a drained tail is truncated. A torn record at the end (a crash mid-append) is
 * cut off at open; a record whose CRC does not match is skipped and counted.
 *
 * Every operation runs on one serial queue: appends, reads and confirmations never interleave.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StorageError } from './errors.js';

const MAGIC = Buffer.from('TGSPILL1', 'latin1');
const VERSION = 1;
export const SPILL_HEADER_BYTES = 32;
export const SPILL_RECORD_HEADER_BYTES = 12;
const READ_OFFSET_AT = 16;
const SCAN_CHUNK = 1 << 20;
const NAME = /^spill-(\d{10})\.log$/;
/** What probe() writes: about one small record. */
const PROBE_BYTES = 4096;

interface Segment {
  seq: number;
  path: string;
  fh: FileHandle;
  /** File size: the end of the last complete record. */
  size: number;
  /** Persisted: start of the first record not yet confirmed. */
  readOffset: number;
  /** Start of the next record to read. */
  cursor: number;
  /** Records read and not yet confirmed, in file order. */
  outstanding: SpillRecord[];
}

/** One record read back for sending. */
export interface SpillRecord {
  readonly seg: number;
  readonly offset: number;
  readonly end: number;
  readonly points: number;
  readonly body: Buffer;
  /** The CRC did not match: the payload is unusable, its points are lost (counted by the caller). */
  readonly corrupt: boolean;
  done: boolean;
}

export interface SpillItem {
  body: Buffer;
  points: number;
}

export interface SpillOpenReport {
  segments: number;
  points: number;
  bytes: number;
  /** Bytes of torn records cut off the end. */
  tornBytes: number;
}

export class Spill {
  private segments: Segment[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private nextSeq = 1;
  private opened = false;
  /** Points in records not yet confirmed (read or not). */
  pendingPoints = 0;
  /** Bytes of segment files on disk. */
  bytes = 0;
  readonly segmentBytes: number;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    segmentBytes?: number,
  ) {
    this.segmentBytes = segmentBytes ?? Math.max(64 * 1024, Math.min(64 * 1024 * 1024, Math.floor(maxBytes / 8)));
  }

  /** Records not yet handed out by readNext(). */
  get hasUnread(): boolean {
    for (const s of this.segments) if (s.cursor < s.size) return true;
    return false;
  }

  /** Whether `bytes` more of records fit under maxBytes (counting a new segment's header). */
  canFit(bytes: number): boolean {
    return this.bytes + bytes + SPILL_HEADER_BYTES <= this.maxBytes;
  }

  /** Opens or creates the folder, checks every segment, cuts torn tails. */
  open(): Promise<SpillOpenReport> {
    return this.serial(async () => {
      mkdirSync(this.dir, { recursive: true });
      const names = readdirSync(this.dir).filter((n) => NAME.test(n)).sort();
      const report: SpillOpenReport = { segments: 0, points: 0, bytes: 0, tornBytes: 0 };
      for (const name of names) {
        const seq = Number(NAME.exec(name)![1]);
        const path = join(this.dir, name);
        const fh = await open(path, 'r+');
        const seg = await this.check(fh, seq, path, report);
        if (!seg) {
          await fh.close();
          await unlink(path).catch(() => {});
          continue;
        }
        this.segments.push(seg);
        this.nextSeq = seq + 1;
      }
      // Drained segments left by a crash between confirming and deleting go now.
      for (const s of [...this.segments]) if (s.readOffset === s.size && s !== this.segments[this.segments.length - 1]) await this.drop(s);
      this.bytes = this.segments.reduce((n, s) => n + s.size, 0);
      report.segments = this.segments.length;
      report.bytes = this.bytes;
      this.opened = true;
      return report;
    });
  }

  private async check(fh: FileHandle, seq: number, path: string, report: SpillOpenReport): Promise<Segment | undefined> {
    const { size: fileSize } = await fh.stat();
    const head = Buffer.alloc(SPILL_HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, SPILL_HEADER_BYTES, 0);
    if (bytesRead < SPILL_HEADER_BYTES || !head.subarray(0, 8).equals(MAGIC) || head.readUInt32LE(8) !== VERSION) {
      // Not ours or torn while being created (before its first record was confirmed durable).
      report.tornBytes += fileSize;
      return undefined;
    }
    let readOffset = Number(head.readBigUInt64LE(READ_OFFSET_AT));
    if (readOffset < SPILL_HEADER_BYTES || readOffset > fileSize) readOffset = SPILL_HEADER_BYTES;
    // Walk record headers from the start: the read offset must sit on a record boundary (else it
    // moves back to the record it falls in, which is then sent again: harmless, writes are idempotent).
    let pos = SPILL_HEADER_BYTES;
    let boundary = SPILL_HEADER_BYTES;
    let points = 0;
    let buf = Buffer.alloc(0);
    let bufAt = 0;
    while (pos + SPILL_RECORD_HEADER_BYTES <= fileSize) {
      if (pos < bufAt || pos + SPILL_RECORD_HEADER_BYTES > bufAt + buf.length) {
        buf = Buffer.alloc(Math.min(SCAN_CHUNK, fileSize - pos));
        const r = await fh.read(buf, 0, buf.length, pos);
        buf = buf.subarray(0, r.bytesRead);
        bufAt = pos;
        if (buf.length < SPILL_RECORD_HEADER_BYTES) break;
      }
      const len = buf.readUInt32LE(pos - bufAt);
      const n = buf.readUInt32LE(pos - bufAt + 4);
      const end = pos + SPILL_RECORD_HEADER_BYTES + len;
      if (end > fileSize) break;
      if (pos <= readOffset) {
        boundary = pos;
        points = n;
      } else points += n;
      pos = end;
    }
    if (pos <= readOffset) {
      boundary = pos;
      points = 0;
    }
    readOffset = boundary;
    if (pos < fileSize) {
      report.tornBytes += fileSize - pos;
      await fh.truncate(pos);
    }
    report.points += points;
    this.pendingPoints += points;
    return { seq, path, fh, size: pos, readOffset, cursor: readOffset, outstanding: [] };
  }

  /**
   * Appends items in order, as many as fit under maxBytes, each written and fdatasync'd before this
   * resolves. Returns how many were appended (the rest did not fit). Throws STORAGE_SPILL_IO.
   */
  append(items: readonly SpillItem[]): Promise<number> {
    return this.serial(async () => {
      this.assertOpen();
      let done = 0;
      while (done < items.length) {
        let tail = this.segments[this.segments.length - 1];
        const first = items[done]!;
        const firstBytes = SPILL_RECORD_HEADER_BYTES + first.body.length;
        if (!tail || (tail.size > SPILL_HEADER_BYTES && tail.size + firstBytes > this.segmentBytes)) {
          if (!this.canFit(firstBytes)) break;
          tail = await this.create();
        } else if (this.bytes + firstBytes > this.maxBytes) break;
        // As many records as fit this segment and the bound, in one write.
        const parts: Buffer[] = [];
        let bytes = 0;
        let points = 0;
        let k = done;
        while (k < items.length) {
          const it = items[k]!;
          const rec = SPILL_RECORD_HEADER_BYTES + it.body.length;
          if (k > done && (tail.size + bytes + rec > this.segmentBytes || this.bytes + bytes + rec > this.maxBytes)) break;
          const h = Buffer.allocUnsafe(SPILL_RECORD_HEADER_BYTES);
          h.writeUInt32LE(it.body.length, 0);
          h.writeUInt32LE(it.points, 4);
          h.writeUInt32LE(crc32(it.body), 8);
          parts.push(h, it.body);
          bytes += rec;
          points += it.points;
          k++;
        }
        const at = tail.size;
        try {
          await writeAll(tail.fh, Buffer.concat(parts, bytes), at);
          await tail.fh.datasync();
        } catch (err) {
          await tail.fh.truncate(at).catch(() => {});
          throw new StorageError('STORAGE_SPILL_IO', `could not append to the spill file ${tail.path}: ${(err as Error).message}`, { cause: err });
        }
        tail.size += bytes;
        this.bytes += bytes;
        this.pendingPoints += points;
        done = k;
      }
      return done;
    });
  }

  /** The next unread record, in order; undefined when every record was handed out. */
  readNext(): Promise<SpillRecord | undefined> {
    return this.serial(async () => {
      this.assertOpen();
      const seg = this.segments.find((s) => s.cursor < s.size);
      if (!seg) return undefined;
      const head = Buffer.alloc(SPILL_RECORD_HEADER_BYTES);
      try {
        await readAll(seg.fh, head, seg.cursor);
        const len = head.readUInt32LE(0);
        const points = head.readUInt32LE(4);
        const body = Buffer.allocUnsafe(len);
        await readAll(seg.fh, body, seg.cursor + SPILL_RECORD_HEADER_BYTES);
        const rec: SpillRecord = { seg: seg.seq, offset: seg.cursor, end: seg.cursor + SPILL_RECORD_HEADER_BYTES + len, points, body, corrupt: crc32(body) !== head.readUInt32LE(8), done: false };
        seg.cursor = rec.end;
        seg.outstanding.push(rec);
        return rec;
      } catch (err) {
        throw new StorageError('STORAGE_SPILL_IO', `could not read the spill file ${seg.path}: ${(err as Error).message}`, { cause: err });
      }
    });
  }

  /** Confirms a record (stored, refused or corrupt): moves the read offset and frees drained segments. */
  confirm(rec: SpillRecord): Promise<void> {
    return this.serial(async () => {
      if (rec.done) return;
      rec.done = true;
      this.pendingPoints -= rec.points;
      const seg = this.segments.find((s) => s.seq === rec.seg);
      if (!seg) return;
      let moved = false;
      while (seg.outstanding.length > 0 && seg.outstanding[0]!.done) {
        seg.readOffset = seg.outstanding.shift()!.end;
        moved = true;
      }
      if (!moved) return;
      const isTail = seg === this.segments[this.segments.length - 1];
      if (seg.readOffset === seg.size && seg.outstanding.length === 0) {
        if (!isTail) return this.drop(seg);
        // Empty again: start over, so the file does not grow forever.
        await seg.fh.truncate(SPILL_HEADER_BYTES).catch(() => {});
        this.bytes -= seg.size - SPILL_HEADER_BYTES;
        seg.size = seg.readOffset = seg.cursor = SPILL_HEADER_BYTES;
      }
      await this.persistOffset(seg).catch(() => {});
    });
  }

  /**
   * Whether the spill's disk takes writes again: writes, fsyncs and removes a small file beside the
   * segments. Throws STORAGE_SPILL_IO (ENOSPC, EIO) when it does not.
   */
  probe(): Promise<void> {
    return this.serial(async () => {
      const path = join(this.dir, 'probe.tmp');
      try {
        const fh = await open(path, 'w');
        try {
          await writeAll(fh, Buffer.alloc(PROBE_BYTES), 0);
          await fh.datasync();
        } finally {
          await fh.close().catch(() => {});
        }
      } catch (err) {
        throw new StorageError('STORAGE_SPILL_IO', `the spill folder ${this.dir} still takes no writes: ${(err as Error).message}`, { cause: err });
      } finally {
        await unlink(path).catch(() => {});
      }
    });
  }

  /** Closes the files (after pending operations). Records read but not confirmed are read again after a reopen. */
  close(): Promise<void> {
    return this.serial(async () => {
      for (const s of this.segments) await s.fh.close().catch(() => {});
      this.segments = [];
      this.opened = false;
    });
  }

  private async create(): Promise<Segment> {
    const seq = this.nextSeq++;
    const path = join(this.dir, `spill-${String(seq).padStart(10, '0')}.log`);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'w+');
      const head = Buffer.alloc(SPILL_HEADER_BYTES);
      MAGIC.copy(head, 0);
      head.writeUInt32LE(VERSION, 8);
      head.writeUInt32LE(SPILL_HEADER_BYTES, 12);
      head.writeBigUInt64LE(BigInt(SPILL_HEADER_BYTES), READ_OFFSET_AT);
      await writeAll(fh, head, 0);
      await fh.datasync();
      await syncDir(this.dir);
      const seg: Segment = { seq, path, fh, size: SPILL_HEADER_BYTES, readOffset: SPILL_HEADER_BYTES, cursor: SPILL_HEADER_BYTES, outstanding: [] };
      this.segments.push(seg);
      this.bytes += SPILL_HEADER_BYTES;
      return seg;
    } catch (err) {
      // Not left behind half made (e.g. ENOSPC while writing its header): the next try starts clean.
      if (fh) {
        await fh.close().catch(() => {});
        await unlink(path).catch(() => {});
      }
      throw new StorageError('STORAGE_SPILL_IO', `could not create the spill file ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async drop(seg: Segment): Promise<void> {
    this.segments = this.segments.filter((s) => s !== seg);
    this.bytes -= seg.size;
    await seg.fh.close().catch(() => {});
    await unlink(seg.path).catch(() => {});
  }

  private async persistOffset(seg: Segment): Promise<void> {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(seg.readOffset));
    await writeAll(seg.fh, b, READ_OFFSET_AT);
  }

  private assertOpen(): void {
    if (!this.opened) throw new StorageError('STORAGE_SPILL_IO', `the spill in ${this.dir} is not open`);
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch(() => {});
    return p;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

async function readAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new Error(`unexpected end of file at ${position + off}`);
    off += bytesRead;
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r').catch(() => undefined);
  if (!d) return;
  await d.sync().catch(() => {});
  await d.close().catch(() => {});
}
