/**
 * Dedupe cursors (device, epoch, highest contiguous seq) kept in an append-only record file in the
 * data folder, so that after a restart frames the gateway already ingested are recognised as
 * replays. Acks are only sent for cursors that reached this file: append() says whether they did.
 */
import { join } from 'node:path';
import { encodeRecord, RecordLog, type RecordFs } from './files/record-log.js';
import type { FileWriteError } from './files/file-error.js';
import type { Logger } from './log.js';

export interface Cursor {
  epoch: number;
  contig: number;
}

// Rewrite the file from the live map once appends make it this many times larger than needed.
const COMPACT_FACTOR = 8;
const MIN_COMPACT_BYTES = 4 * 1024 * 1024;
const DIGITS = /^\d{1,10}$/;
// A cursor line's usual length: checksum, id, epoch, seq.
const LINE_BYTES = 50;

export class CursorStore {
  private readonly file: RecordLog;
  readonly cursors = new Map<string, Cursor>();

  constructor(dir: string, opts: { log?: Logger | undefined; retryMs?: number; fs?: RecordFs } = {}) {
    this.file = new RecordLog(join(dir, 'cursors.log'), {
      ...opts,
      consequence: 'no acks go out (devices keep their readings and resend them later)',
    });
  }

  /** Why cursors cannot be written now (acks are held back meanwhile); undefined while they can. */
  get failure(): FileWriteError | undefined {
    return this.file.failure;
  }

  /** Appends refused because the file could not take them (each one held back a round of acks). */
  get refused(): number {
    return this.file.refused;
  }

  /**
   * Loads what the last run left (damaged lines are ignored, never read as a smaller cursor) and
   * compacts it. On a full disk the gateway still starts: the file is then failing, acks wait, and
   * it is rewritten by itself once the disk takes it.
   */
  open(): Map<string, Cursor> {
    // The format before checksums had the same fields; its lines still load.
    const parse = (text: string) => this.parse(text);
    this.file.load(parse, parse);
    this.file.open(() => this.lines());
    return this.cursors;
  }

  /**
   * Appends the given cursor lines (from set()) in one write. True only when every byte reached
   * the file; while it is failing, false even for no lines, because cursors set since the failure
   * reach the file only with its rewrite.
   */
  append(entries: string): boolean {
    if (!this.file.append(entries)) return false;
    const bytes = this.file.bytes;
    if (bytes > MIN_COMPACT_BYTES && bytes > COMPACT_FACTOR * this.cursors.size * LINE_BYTES) this.file.compact();
    return true;
  }

  /** Records a cursor in the live map; the caller batches the line into append(). */
  set(id: string, epoch: number, contig: number): string {
    const c = this.cursors.get(id);
    if (c) {
      c.epoch = epoch;
      c.contig = contig;
    } else this.cursors.set(id, { epoch, contig });
    return encodeRecord(`${id}\t${epoch}\t${contig}`);
  }

  close(): void {
    this.file.close(true);
  }

  private parse(text: string): boolean {
    const f = text.split('\t');
    if (f.length !== 3) return false;
    const id = f[0]!;
    if (id === '' || !DIGITS.test(f[1]!) || !DIGITS.test(f[2]!)) return false;
    const e = Number(f[1]);
    const c = Number(f[2]);
    if (e > 0xffffffff || c > 0xffffffff) return false;
    this.cursors.set(id, { epoch: e, contig: c });
    return true;
  }

  private *lines(): Iterable<string> {
    for (const [id, c] of this.cursors) yield `${id}\t${c.epoch}\t${c.contig}`;
  }
}
