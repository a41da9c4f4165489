/**
 * The device registry's changes survive restarts in `<data-dir>/devices.jsonl`, a record file with
 * the command journal's rules (files/record-log.ts): one checksummed line per change holding the
 * device's whole entry (or its deletion), the last line of an id wins, a torn line is skipped,
 * every change is fsync'd before it is answered, and the file is rewritten atomically from what
 * the registry holds when it grows large or after a failed write.
 */
import { join } from 'node:path';
import { DEVICE_ID_PATTERN } from '../../devices/device-id.js';
import type { RegistryEntry } from '../auth.js';
import { FileWriteError } from '../files/file-error.js';
import { encodeRecord, RecordLog, type RecordFs } from '../files/record-log.js';
import type { Logger } from '../log.js';

/** One stored change: the entry as it is now, or a deletion (so a file-imported device stays deleted). */
export interface StoredDevice extends RegistryEntry {
  /** When the change was made (ms since 1970, strictly increasing per device): the newer change wins in a cluster. */
  rev: number;
  deleted?: true;
  /** With a deletion: its stored history was deleted too (each cluster instance deletes what it holds). */
  history?: true;
}

const COMPACT_AFTER_BYTES = 4 * 1024 * 1024;

export class RegistryStore {
  private readonly file: RecordLog;

  constructor(dir: string, opts: { log?: Logger | undefined; retryMs?: number; fs?: RecordFs } = {}) {
    this.file = new RecordLog(join(dir, 'devices.jsonl'), {
      ...opts,
      consequence: 'device changes (add, rotate, disable, delete, edit) are refused with REGISTRY_NOT_PERSISTED until it can be rewritten',
    });
  }

  get path(): string {
    return this.file.path;
  }

  /** Why the file cannot be written now; undefined while it can. */
  get failure(): FileWriteError | undefined {
    return this.file.failure;
  }

  /** Changes that did not reach the file. */
  get refused(): number {
    return this.file.refused;
  }

  /** Every device the last run left, deletions included. */
  load(): Map<string, StoredDevice> {
    const out = new Map<string, StoredDevice>();
    this.file.load((text) => {
      try {
        const r = JSON.parse(text) as StoredDevice;
        if (typeof r?.id !== 'string' || !DEVICE_ID_PATTERN.test(r.id) || typeof r.rev !== 'number') return false;
        out.set(r.id, r);
        return true;
      } catch {
        return false;
      }
    });
    return out;
  }

  /** Starts a fresh file holding what `keep` gives (again at each compaction and recovery). */
  open(keep: () => Iterable<StoredDevice>): void {
    this.file.open(function* () {
      for (const r of keep()) yield JSON.stringify(r);
    });
  }

  /**
   * Writes one change and fsyncs it. Throws FileWriteError when the disk refuses: the caller then
   * changes nothing (the file is rebuilt from what the registry holds, which does not include it).
   */
  persist(r: StoredDevice): void {
    if (this.file.append(encodeRecord(JSON.stringify(r))) && this.file.sync()) return;
    throw this.file.failure ?? new FileWriteError(this.file.path, 'write', Object.assign(new Error('the device registry file is closed'), { code: 'EBADF' }));
  }

  /** Rewrites the file with only the current entries once it is large; call after the change is applied. */
  compactIfLarge(): void {
    if (this.file.bytes > COMPACT_AFTER_BYTES) this.file.compact();
  }

  close(): void {
    this.file.close(true);
  }
}
