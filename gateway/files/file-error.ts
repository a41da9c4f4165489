/**
 * Failures of the files the gateway keeps in its data folder (cursors, command journal): they name
 * the file and the errno, so an operator knows which disk to look at.
 */
import { GatewayError } from '../errors.js';

const HINTS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error from the disk',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
};

function errnoOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

/** A write, fsync or rewrite of a gateway file failed (code FILE_WRITE_FAILED). */
export class FileWriteError extends GatewayError {
  override name = 'FileWriteError';
  /** The errno code, e.g. ENOSPC or EIO. */
  readonly errno: string;
  constructor(
    readonly path: string,
    /** What was being done: write, fsync or rewrite. */
    readonly op: string,
    cause: unknown,
  ) {
    const errno = errnoOf(cause);
    super('FILE_WRITE_FAILED', `cannot ${op} ${path}: ${errno} (${HINTS[errno] ?? (cause as Error)?.message ?? String(cause)})`, { cause });
    this.errno = errno;
  }

  /** True when the disk is full (as opposed to broken): more space fixes it. */
  get noSpace(): boolean {
    return this.errno === 'ENOSPC' || this.errno === 'EDQUOT';
  }
}

/** A gateway file exists but cannot be read at start (code FILE_READ_FAILED). */
export class FileReadError extends GatewayError {
  override name = 'FileReadError';
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const errno = errnoOf(cause);
    super('FILE_READ_FAILED', `cannot read ${path}: ${errno} (${HINTS[errno] ?? (cause as Error)?.message ?? String(cause)}); fix or move the file and start again`, { cause });
  }
}
