/**
 * Commands survive restarts in an append-only file of JSON lines (one full record per
 * transition; the last line of an id wins). A torn last line from a crash is skipped. The file
 * is rewritten with only what is kept once it grows well past that.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandRecord } from './command.js';

const COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

export class CommandJournal {
  private fd: number | undefined;
  private bytes = 0;
  private dirty = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly path: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'commands.jsonl');
  }

  /** Reads every record the last run left. */
  load(): Map<string, CommandRecord> {
    const out = new Map<string, CommandRecord>();
    if (!existsSync(this.path)) return out;
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const r = JSON.parse(line) as CommandRecord;
        if (typeof r.id === 'string' && typeof r.deviceId === 'string') out.set(r.id, r);
      } catch {
        // A line cut short by a crash: the previous version of that record stands.
      }
    }
    return out;
  }

  /** Starts a fresh file holding `keep` (what load() returned, pruned) and opens it for appends. */
  open(keep: Iterable<CommandRecord>): void {
    let text = '';
    for (const r of keep) text += JSON.stringify(r) + '\n';
    const tmp = this.path + '.tmp';
    writeFileSync(tmp, text);
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    this.bytes = Buffer.byteLength(text);
    this.fd = openSync(this.path, 'a');
    // fsync in batches: a process kill loses nothing (the kernel has the bytes); this bounds what a
    // power cut can take to the last 100 ms.
    this.syncTimer = setInterval(() => this.sync(), 100);
    this.syncTimer.unref();
  }

  append(r: CommandRecord): void {
    if (this.fd === undefined) return;
    this.bytes += writeSync(this.fd, JSON.stringify(r) + '\n');
    this.dirty = true;
  }

  /** True when the file is large enough that the owner should call open() again with what it keeps. */
  get wantsCompaction(): boolean {
    return this.bytes > COMPACT_AFTER_BYTES;
  }

  private sync(): void {
    if (this.fd !== undefined && this.dirty) {
      this.dirty = false;
      fsyncSync(this.fd);
    }
  }

  close(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.fd === undefined) return;
    this.sync();
    closeSync(this.fd);
    this.fd = undefined;
  }

  reopen(keep: Iterable<CommandRecord>): void {
    this.close();
    this.open(keep);
  }
}
