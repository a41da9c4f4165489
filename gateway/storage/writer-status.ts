/**
 * What the writer tells operators: the health status and its one-sentence detail (from the present
 * state only), the last error, error logs throttled to one line per code every 10 s, and one
 * aggregated line per interval while frames are refused for storage.
 */
import type { Logger } from '../log.js';
import { StorageError } from './errors.js';

export const LOG_EVERY_MS = 10_000;

/** The writer's present state, as the status needs it. */
export interface WriterState {
  where: string;
  failing: boolean;
  failingSince: number;
  lastErrorCode: string | undefined;
  spillError: StorageError | undefined;
  spillFull: boolean;
  spilledPoints: number;
  /** Points in memory (sealed, not settled) and the bound over which they go to the spill. */
  memPoints: number;
  bufferPoints: number;
  /** Points memory may hold before admit() says no (now). */
  memCap: number;
  /** admit() says no now. */
  refusing: boolean;
  needSchema: boolean;
}

export function writerStatus(s: WriterState, now: number): { status: 'ok' | 'degraded' | 'down'; detail?: string } {
  const parts: string[] = [];
  if (s.failing) parts.push(`InfluxDB at ${s.where} is failing (${s.lastErrorCode ?? 'error'}) for ${Math.round((now - s.failingSince) / 1000)} s`);
  if (s.spillError) parts.push(`the spill file fails (${s.spillError.message})`);
  else if (s.spillFull && (s.failing || s.refusing || s.memPoints > s.bufferPoints)) parts.push('the spill file is full');
  if (s.refusing) parts.push(`memory holds its maximum of ${s.memCap} points: devices' frames are refused (STORAGE_FULL) and resent by them later`);
  else if (s.memPoints > s.bufferPoints) parts.push(`${s.memPoints} points waiting in memory`);
  if (s.spilledPoints > 0) parts.push(`${s.spilledPoints} points in the spill file${s.failing || s.refusing ? '' : ', draining'}`);
  if (s.needSchema && !s.failing) parts.push('database not set up yet');
  const detail = parts.length ? parts.join('; ') : undefined;
  if (s.refusing || (s.failing && (s.spillError !== undefined || s.spillFull))) return { status: 'down', detail };
  if (detail) return { status: 'degraded', detail };
  return { status: 'ok' };
}

/** The last error, and its log lines, at most one per code every LOG_EVERY_MS. */
export class ErrorNotes {
  last: StorageError | undefined;
  private readonly loggedAt = new Map<string, number>();

  constructor(private readonly log: Logger) {}

  note(err: unknown, extra: Record<string, unknown> = {}): void {
    const e = err instanceof StorageError ? err : new StorageError('STORAGE_SPILL_IO', String(err), { cause: err });
    this.last = e;
    const now = Date.now();
    if (now - (this.loggedAt.get(e.code) ?? 0) < LOG_EVERY_MS) return;
    this.loggedAt.set(e.code, now);
    this.log.warn({ code: e.code, retryable: e.retryable, ...extra }, e.message);
  }
}

/** Counts refused writes and logs one line per interval with the totals while refusals go on. */
export class RefusalLog {
  total = 0;
  private sinceLog = 0;
  private loggedAt = 0;

  constructor(private readonly log: Logger) {}

  refused(): void {
    this.total++;
    this.sinceLog++;
  }

  /** Called on the writer's tick: logs when the interval is over and something was refused in it. */
  flush(now: number, why: () => string | undefined): void {
    if (this.sinceLog === 0 || now - this.loggedAt < LOG_EVERY_MS) return;
    this.log.error(
      { code: 'STORAGE_FULL', refused: this.sinceLog, refusedTotal: this.total },
      `storage is full: ${this.sinceLog} frames refused to devices (STORAGE_FULL; ${this.total} since start); they keep them and resend. ${why() ?? ''}. ` +
        'Bring InfluxDB back, or free the disk of the spill folder, or raise --spill-max-bytes / --storage-buffer-points',
    );
    this.loggedAt = now;
    this.sinceLog = 0;
  }
}
