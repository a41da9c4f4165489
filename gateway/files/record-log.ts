/**
 * An append-only file of records, one per line: `=<crc32 of the payload, 8 hex digits> <payload>`.
 *
 * - A line cut short (a crash, or a full disk in the middle of a write) fails its checksum and is
 *   ignored: never read as a smaller value. Lines of the older format (no checksum) still load.
 * - append() is true only when every byte reached the file. A short write is completed or, when
 *   the disk refuses the rest, cut back to the last whole record and reported.
 * - After any failure (ENOSPC, EIO, a failed fsync) the file refuses appends and is rebuilt from
 *   its owner's snapshot (tmp file, fsync, rename), retried every `retryMs` until it works: what
 *   the owner holds in memory and what the file holds never silently part. Nothing here throws.
 */
import * as nodeFs from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../log.js';
import { FileReadError, FileWriteError } from './file-error.js';

/** The file operations used, so unit tests can inject a failing disk where none can be mounted. */
export type RecordFs = Pick<
  typeof nodeFs,
  'openSync' | 'writeSync' | 'fsyncSync' | 'ftruncateSync' | 'closeSync' | 'renameSync' | 'unlinkSync' | 'mkdirSync' | 'readFileSync' | 'statfsSync'
>;

export interface RecordLogOptions {
  /** What a failure means for users, for the log line (e.g. "acks are held back"). */
  consequence: string;
  log?: Logger | undefined;
  /** How often a failed file is retried. */
  retryMs?: number;
  fs?: RecordFs;
}

export interface LoadReport {
  records: number;
  /** Lines of the format before checksums, handed to the legacy parser. */
  legacy: number;
  /** Lines ignored: a torn last line, a failed checksum, or a line the parser refused. */
  damaged: number;
}

const MARK = 61; // '='
const HEX8 = /^[0-9a-f]{8}$/;

/** One record as a line of the file. The payload must not contain a newline. */
export function encodeRecord(payload: string): string {
  return `=${crc32(payload).toString(16).padStart(8, '0')} ${payload}\n`;
}

export class RecordLog {
  private readonly fs: RecordFs;
  private readonly retryMs: number;
  private fd: number | undefined;
  /** Bytes of whole records in the file: where a torn append is cut back to. */
  private size = 0;
  private unsynced = false;
  private snapshot: (() => Iterable<string>) | undefined;
  private failed: FileWriteError | undefined;
  private failedSince = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private compactRetryAt = 0;
  /** Appends that did not reach the file (failed, or refused while the file is failing). */
  refused = 0;

  constructor(
    readonly path: string,
    private readonly opts: RecordLogOptions,
  ) {
    this.fs = opts.fs ?? nodeFs;
    this.retryMs = opts.retryMs ?? 1000;
  }

  /** Why the file cannot be written now; undefined while it can. */
  get failure(): FileWriteError | undefined {
    return this.failed;
  }

  /** Bytes in the file now. */
  get bytes(): number {
    return this.size;
  }

  /**
   * Reads every whole record the file holds. `legacy` parses lines of the format before checksums;
   * either parser returns false for a line it refuses. A missing file holds nothing; one that
   * exists but cannot be read throws FileReadError (starting without it would forget its state).
   */
  load(parse: (payload: string) => boolean, legacy?: (line: string) => boolean): LoadReport {
    const report: LoadReport = { records: 0, legacy: 0, damaged: 0 };
    let text: string;
    try {
      text = this.fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return report;
      throw new FileReadError(this.path, err);
    }
    const lines = text.split('\n');
    // What follows the last newline is a write cut short: never a record.
    if (lines.pop() !== '') report.damaged++;
    for (const line of lines) {
      if (line === '') continue;
      if (line.charCodeAt(0) === MARK) {
        const sum = line.slice(1, 9);
        const payload = line.slice(10);
        if (line.charCodeAt(9) === 32 && HEX8.test(sum) && crc32(payload) === parseInt(sum, 16) && parse(payload)) report.records++;
        else report.damaged++;
      } else if (legacy?.(line)) report.legacy++;
      else report.damaged++;
    }
    if (report.damaged > 0) {
      this.opts.log?.warn({ file: this.path, damaged: report.damaged }, `ignored ${report.damaged} damaged line(s) in ${this.path}: writes cut short by a crash or a full disk; the records before them stand`);
    }
    return report;
  }

  /**
   * Rewrites the file to hold what `snapshot` gives (also used for every later compaction and
   * recovery) and opens it for appends. False when the disk refuses: the file is then failing,
   * and retried by itself.
   */
  open(snapshot: () => Iterable<string>): boolean {
    this.snapshot = snapshot;
    const err = this.rewrite();
    if (err) this.fail(err);
    return err === undefined;
  }

  /** Appends encoded records (encodeRecord) in one write. True only when every byte reached the file. */
  append(lines: string): boolean {
    if (this.failed || this.fd === undefined) {
      if (lines !== '') this.refused++;
      return false;
    }
    if (lines === '') return true;
    const buf = Buffer.from(lines, 'utf8');
    try {
      writeAll(this.fs, this.fd, buf);
    } catch (err) {
      this.refused++;
      this.fail(new FileWriteError(this.path, 'write', err));
      return false;
    }
    this.size += buf.length;
    this.unsynced = true;
    return true;
  }

  /** fsyncs what was appended since the last call. False when the file is failing. */
  sync(): boolean {
    if (this.failed) return false;
    if (this.fd === undefined || !this.unsynced) return true;
    try {
      this.fs.fsyncSync(this.fd);
      this.unsynced = false;
      return true;
    } catch (err) {
      // After a failed fsync the kernel may have dropped the pages: what the file holds is unknown.
      this.fail(new FileWriteError(this.path, 'fsync', err));
      return false;
    }
  }

  /**
   * Rewrites the file from the snapshot to shed superseded records. When that fails the file as it
   * is keeps taking appends (a compaction needs room for a whole copy; appends need far less) and
   * the next try waits `retryMs`.
   */
  compact(): boolean {
    if (this.failed || this.snapshot === undefined || Date.now() < this.compactRetryAt) return false;
    const err = this.rewrite();
    if (!err) return true;
    this.compactRetryAt = Date.now() + this.retryMs;
    this.opts.log?.warn({ file: this.path, errno: err.errno, code: err.code }, `${err.message}: could not compact it; appends go on, compaction is retried`);
    return false;
  }

  /** Stops the retries; `compact` leaves the file small for the next start. Never throws. */
  close(compact = false): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    // A failing file gets one last try, so the next start finds what this run knew.
    if (this.failed) this.recover();
    else if (compact) this.compact();
    this.sync();
    if (this.fd !== undefined) {
      try {
        this.fs.closeSync(this.fd);
      } catch {
        // Nothing left to save: every record was written (or reported not) already.
      }
    }
    this.fd = undefined;
  }

  private fail(err: FileWriteError): void {
    if (this.fd !== undefined) {
      try {
        // Cut a torn append back to the last whole record, so a crash now leaves only whole records
        // (the loader skips a torn tail anyway; the rewrite on recovery replaces the file).
        this.fs.ftruncateSync(this.fd, this.size);
      } catch {
        // The rewrite on recovery replaces the file; until then the loader ignores the torn tail.
      }
      try {
        this.fs.closeSync(this.fd);
      } catch {
        // The descriptor is dropped either way.
      }
      this.fd = undefined;
    }
    if (!this.failed) {
      this.failedSince = Date.now();
      this.opts.log?.error(
        { file: this.path, errno: err.errno, code: err.code },
        `${err.message}: ${this.opts.consequence}. Free space on (or repair) the disk of --data-dir; the gateway retries every ${this.retryMs} ms and recovers by itself`,
      );
    }
    this.failed = err;
    if (!this.retryTimer) {
      this.retryTimer = setInterval(() => this.recover(), this.retryMs);
      this.retryTimer.unref();
    }
  }

  private recover(): void {
    const err = this.rewrite();
    if (err) {
      this.failed = err;
      return;
    }
    this.opts.log?.warn({ file: this.path, failedMs: Date.now() - this.failedSince }, `${this.path} is writable again; it holds everything the gateway kept meanwhile`);
    this.failed = undefined;
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** tmp file, fsync, rename, fsync the folder; then appends go to the new file. */
  private rewrite(): FileWriteError | undefined {
    if (this.snapshot === undefined) return undefined;
    let text = '';
    for (const payload of this.snapshot()) text += encodeRecord(payload);
    const buf = Buffer.from(text, 'utf8');
    const fs = this.fs;
    const dir = dirname(this.path);
    const tmp = this.path + '.tmp';
    let fd: number | undefined;
    try {
      fs.mkdirSync(dir, { recursive: true });
      // Checked first so that retrying on a full disk does not take the last bytes other writers
      // (the spill file) need, only to give them back. bfree, not bavail: root may use the reserve.
      const st = fs.statfsSync(dir);
      if (st.bfree * st.bsize < buf.length + st.bsize) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      fd = fs.openSync(tmp, 'w');
      writeAll(fs, fd, buf);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = undefined;
      fs.renameSync(tmp, this.path);
      syncDir(fs, dir);
      const next = fs.openSync(this.path, 'a');
      if (this.fd !== undefined) fs.closeSync(this.fd);
      this.fd = next;
    } catch (err) {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
        } catch {
          // dropped either way
        }
      }
      try {
        fs.unlinkSync(tmp);
      } catch {
        // never created, or the disk refuses that too: the next rewrite truncates it
      }
      return new FileWriteError(this.path, 'rewrite', err);
    }
    this.size = buf.length;
    this.unsynced = false;
    return undefined;
  }
}

/** Writes all of buf, going on after short writes; throws when the disk refuses the rest. */
function writeAll(fs: RecordFs, fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off);
    // write(2) returning 0 for a regular file means no progress is possible: as good as full.
    if (n <= 0) throw Object.assign(new Error('no space left on device (the write made no progress)'), { code: 'ENOSPC' });
    off += n;
  }
}

/** Makes a rename survive a power cut. Best effort: some file systems cannot fsync a folder. */
function syncDir(fs: RecordFs, dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // The rename is done; only a power cut right now could undo it.
  }
  if (fd === undefined) return;
  try {
    fs.closeSync(fd);
  } catch {
    // a read-only descriptor: nothing to lose
  }
}
