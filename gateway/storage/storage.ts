import type { TelemetryBatch } from '../../devices/codec/index.js';

export interface HistoryQuery {
  device: string;
  channel: number;
  /** Inclusive, ms since epoch. */
  from: number;
  /** Inclusive, ms since epoch. */
  to: number;
  /** Most buckets to return. */
  points: number;
}

/**
 * One time bucket of history; a raw point is a bucket with count 1. `t` is the bucket start.
 * Buckets are `width = ceil((to - from + 1) / points)` ms wide and start at `from + k * width`;
 * empty buckets are left out. A bool reads as 1 (true) or 0 (false), so a bucket's mean is the
 * fraction of true readings.
 */
export interface HistoryBucket {
  t: number;
  mean: number;
  min: number;
  max: number;
  count: number;
}

/** What /readyz, /metrics and the dashboard's gateway panel show about storage. */
export interface StorageHealth {
  /**
   * ok: nothing waits beyond the current batch. degraded: the database fails or is slow, or a spill
   * is being drained; nothing is lost. down: the database fails and the spill file cannot take more
   * (full or failing): new readings can only wait in memory, and once that is full devices' frames
   * are refused (STORAGE_FULL) until the database or the spill takes data again.
   */
  status: 'ok' | 'degraded' | 'down';
  /** One human sentence on what is going on when not ok. */
  detail?: string;
  /** Points in memory waiting for the database (including the batch being filled). */
  buffered: number;
  /** Bytes of spill files on disk. */
  spilledBytes: number;
  /** Points in the spill files not yet in the database. */
  spilledPoints: number;
  /** Points the database accepted (a point re-sent after an outage counts again). */
  written: number;
  /** Write requests sent again after a retryable failure. */
  retried: number;
  /** Writes (frames) refused by admit() because memory and the spill were full: never taken, never acked; their devices resend them. */
  refused: number;
  /**
   * Points this process gave up on: a spill record whose checksum failed (acked when it was
   * spilled: truly lost), or points still in memory when close() found neither the database nor the
   * spill taking them (never acked: their devices resend them after the restart).
   */
  lost: number;
  /** Points the database refused for good (non-retryable: type conflict, bad data). */
  rejected: number;
  /** The last error, with its code: `STORAGE_UNREACHABLE: connect ECONNREFUSED 127.0.0.1:8086`. */
  lastError?: string;
}

/** Reading times (ms since epoch, inclusive) a store keeps. */
export interface TimeRange {
  from: number;
  to: number;
}

/**
 * Where readings go. Writing a point twice with the same (device, channel, time) keeps one
 * point, as InfluxDB does, so replays after a reconnect never double a reading.
 *
 * Durability: write() returns a ticket, increasing by one per call on this instance. Every write with
 * a ticket ≤ `durableTicket` is settled: stored durably (in the database, or written and fsync'd to
 * the spill file), or refused by the database for good (`rejected`, counted in health()). It is never
 * only in memory, and never dropped: when storage cannot take more, admit() says so before the
 * write, and the frame is refused to its device instead. An ack to a device may cover a frame once
 * its ticket is ≤ durableTicket.
 */
export interface Storage {
  readonly kind: string;
  start(): Promise<void>;
  /**
   * Whether a write may come now. False while storage can make nothing more durable (memory at its
   * bound, and the spill file full or failing while the database fails): the caller then refuses the
   * frame (STORAGE_FULL) so its device keeps it and resends. Each false is counted (health().refused)
   * and logged in aggregate. True again by itself once the database or the spill takes data.
   */
  admit(): boolean;
  /**
   * The reading times this store keeps, now (e.g. not older than the InfluxDB retention policy).
   * Returns the same object on every call (hot path): read it, do not keep it.
   */
  timeRange(now: number): Readonly<TimeRange>;
  /**
   * Hot path: takes the decoded readings of one frame (copying what it keeps: `batch` is reused by the
   * caller) and returns this write's ticket. Never blocks, never throws.
   */
  write(device: string, deviceType: string | undefined, frameTime: number, batch: TelemetryBatch): number;
  /** The highest ticket up to which every write is settled (see above). Only grows. */
  readonly durableTicket: number;
  /** Resolves true once durableTicket ≥ ticket, or false after timeoutMs (or at close() when it never will). */
  whenDurable(ticket: number, timeoutMs: number): Promise<boolean>;
  /**
   * Optional: `cb(durableTicket)` after each advance of durableTicket, outside write() (from an I/O
   * callback, at most a few times per flush interval). Adapters whose writes are settled at once
   * (memory) leave it out: poll durableTicket instead.
   */
  onDurable?(cb: (durableTicket: number) => void): void;
  health(): StorageHealth;
  history(q: HistoryQuery): Promise<HistoryBucket[]>;
  /** Channels that have data for a device, ascending. */
  channels(device: string): Promise<number[]>;
  /** Flushes (to the database or the spill file, within a bounded time) and releases everything. Idempotent. */
  close(): Promise<void>;
}
