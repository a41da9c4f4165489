/**
 * Storage failures with stable codes, each saying whether trying again can help (as Telegraf's
 * outputs do). Retryable: the data is fine and waits (memory, then the spill file). Non-retryable:
 * the database refuses the data itself; it is counted as `rejected` and never blocks other points.
 */
import { GatewayError } from '../errors.js';

export const STORAGE_ERROR_CODES = {
  /** Connection refused, reset or closed: the database is not there. Retryable. */
  STORAGE_UNREACHABLE: true,
  /** No answer within the request timeout (a hung or overloaded database). Retryable. */
  STORAGE_TIMEOUT: true,
  /** HTTP 5xx or another unexpected answer. Retryable. */
  STORAGE_SERVER_ERROR: true,
  /** The database is gone (HTTP 404 "database not found"): it is created again, then retried. */
  STORAGE_DB_NOT_FOUND: true,
  /** HTTP 401/403: wrong credentials. Retryable (the data is kept while an operator fixes the config). */
  STORAGE_UNAUTHORIZED: true,
  /** HTTP 400 for a whole request: every point in it is refused (found one by one, see the writer). */
  STORAGE_REJECTED: false,
  /** HTTP 400 "partial write": some points refused (field type conflict, unparsable, out of retention), the rest stored. */
  STORAGE_PARTIAL_WRITE: false,
  /** A point InfluxDB cannot hold (time outside 1677-09-21..2262-04-11), refused before sending. */
  STORAGE_POINT_INVALID: false,
  /** Points lost: a spill record failed its checksum, or close() found neither the database nor the spill taking them (never acked). */
  STORAGE_LOST: false,
  /** The spill file could not be written or read. */
  STORAGE_SPILL_IO: false,
  /** The --influx URL or another storage setting is unusable. */
  STORAGE_CONFIG: false,
  /** A query (history, channels) failed. */
  STORAGE_QUERY_FAILED: false,
} as const;

export type StorageErrorCode = keyof typeof STORAGE_ERROR_CODES;

export class StorageError extends GatewayError {
  override name = 'StorageError';
  readonly retryable: boolean;
  constructor(
    override readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.retryable = STORAGE_ERROR_CODES[code];
  }

  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}
