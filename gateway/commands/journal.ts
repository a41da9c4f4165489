/**
 * Commands survive restarts in an append-only record file of JSON (one full record per transition;
 * the last line of an id wins). A torn or damaged line is skipped. The file is rewritten with only
 * what is kept once it grows well past that, and after any write failure (full disk, EIO), from
 * what the command service holds, as soon as the disk takes it again.
 */
import { join } from 'node:path';
import { FileWriteError } from '../files/file-error.js';
import { encodeRecord, RecordLog, type RecordFs } from '../files/record-log.js';
import type { Logger } from '../log.js';
import type { CommandRecord } from './command.js';

const COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

export class CommandJournal {
  private readonly file: RecordLog;
  private syncTimer: NodeJS.Timeout | undefined;

  constructor(dir: string, opts: { log?: Logger | undefined; retryMs?: number; fs?: RecordFs } = {}) {
    this.file = new RecordLog(join(dir, 'commands.jsonl'), {
      ...opts,
      consequence: 'new commands are refused (COMMAND_NOT_PERSISTED) and state changes wait in memory until it can be rewritten',
    });
  }

  /** Why the journal cannot be written now; undefined while it can. */
  get failure(): FileWriteError | undefined {
    return this.file.failure;
  }

  /** Records that did not reach the file. */
  get refused(): number {
    return this.file.refused;
  }

  /** Reads every record the last run left (lines of the format before checksums too). */
  load(): Map<string, CommandRecord> {
    const out = new Map<string, CommandRecord>();
    const parse = (text: string): boolean => {
      try {
        const r = JSON.parse(text) as CommandRecord;
        if (typeof r?.id !== 'string' || typeof r.deviceId !== 'string') return false;
        out.set(r.id, r);
        return true;
      } catch {
        return false;
      }
    };
    this.file.load(parse, parse);
    return out;
  }

  /**
   * Starts a fresh file holding what `keep` gives (called again for each compaction and recovery)
   * and opens it for appends. On a full disk the journal starts failing rather than the gateway.
   */
  open(keep: () => Iterable<CommandRecord>): void {
    this.file.open(function* () {
      for (const r of keep()) yield JSON.stringify(r);
    });
    // fsync in batches: a process kill loses nothing (the kernel has the bytes); this bounds what a
    // power cut can take to the last 100 ms.
    this.syncTimer ??= setInterval(() => this.file.sync(), 100);
    this.syncTimer.unref();
  }

  /** A new command, before it is queued: throws FileWriteError when the journal cannot take it. */
  persist(r: CommandRecord): void {
    if (this.file.append(encodeRecord(JSON.stringify(r)))) return;
    throw this.file.failure ?? new FileWriteError(this.file.path, 'write', Object.assign(new Error('the journal is closed'), { code: 'EBADF' }));
  }

  /** A transition. False when it did not reach the file: it is written with the journal's rewrite. */
  append(r: CommandRecord): boolean {
    return this.file.append(encodeRecord(JSON.stringify(r)));
  }

  /** Rewrites the file with only what is kept, once it is large enough to be worth it. */
  compactIfLarge(): void {
    if (this.file.bytes > COMPACT_AFTER_BYTES) this.file.compact();
  }

  close(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = undefined;
    this.file.close();
  }
}
