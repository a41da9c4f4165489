/**
 * Dedupe cursors (device, epoch, highest contiguous seq) kept in an append-only file in the data
 * folder, so that after a restart frames the gateway already ingested are recognised as
 * replays. Acks are only sent for cursors that reached this file.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface Cursor {
  epoch: number;
  contig: number;
}

// Rewrite the file from the live map once appends make it this many times larger than needed.
const COMPACT_FACTOR = 8;
const MIN_COMPACT_BYTES = 4 * 1024 * 1024;

export class CursorStore {
  private fd: number | undefined;
  private bytes = 0;
  private readonly path: string;
  readonly cursors = new Map<string, Cursor>();

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'cursors.log');
  }

  /** Loads what the last run left (a torn last line from a crash is ignored) and compacts it. */
  open(): Map<string, Cursor> {
    if (existsSync(this.path)) {
      const text = readFileSync(this.path, 'utf8');
      for (const line of text.split('\n')) {
        const [id, epoch, contig] = line.split('\t');
        if (id === undefined || epoch === undefined || contig === undefined) continue;
        const e = Number(epoch);
        const c = Number(contig);
        if (!Number.isInteger(e) || !Number.isInteger(c) || e < 0 || c < 0 || e > 0xffffffff || c > 0xffffffff) continue;
        this.cursors.set(id, { epoch: e, contig: c });
      }
    }
    this.compact();
    return this.cursors;
  }

  /**
   * Appends the given cursors in one write. True only when every byte reached the file: the ack
   * ledger sends no ack whose cursor is not there.
   */
  append(entries: string): boolean {
    if (entries === '') return true;
    if (this.fd === undefined) return false;
    this.bytes += writeSync(this.fd, entries);
    if (this.bytes > MIN_COMPACT_BYTES && this.bytes > COMPACT_FACTOR * this.cursors.size * 40) this.compact();
    return true;
  }

  /** Records a cursor in the live map; the caller batches the line into append(). */
  set(id: string, epoch: number, contig: number): string {
    const c = this.cursors.get(id);
    if (c) {
      c.epoch = epoch;
      c.contig = contig;
    } else this.cursors.set(id, { epoch, contig });
    return `${id}\t${epoch}\t${contig}\n`;
  }

  private compact(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    let text = '';
    for (const [id, c] of this.cursors) text += `${id}\t${c.epoch}\t${c.contig}\n`;
    const tmp = this.path + '.tmp';
    writeFileSync(tmp, text);
    renameSync(tmp, this.path);
    this.bytes = Buffer.byteLength(text);
    this.fd = openSync(this.path, 'a');
  }

  close(): void {
    if (this.fd === undefined) return;
    this.compact();
    closeSync(this.fd!);
    this.fd = undefined;
  }
}
