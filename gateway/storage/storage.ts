import type { HistoryBucket, StorageHealth } from '../../devices/api/json.js';
import type { TelemetryBatch } from '../../devices/codec/index.js';

/** Their JSON is part of the API (history answers, stats): devices/api/json.ts. */
export type { HistoryBucket, StorageHealth };

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
  /**
   * Deletes every stored reading of a device (`DELETE /api/devices/{id}?history=true`). Readings
   * of it still waiting in a write buffer or the spill file may land after this; nothing of the
   * device is written after it is deleted, as its connection is closed first.
   */
  deleteDevice(device: string): Promise<void>;
  /** Channels that have data for a device, ascending. */
  channels(device: string): Promise<number[]>;
  /** Flushes (to the database or the spill file, within a bounded time) and releases everything. Idempotent. */
  close(): Promise<void>;
}
