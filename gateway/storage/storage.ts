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

/** One time bucket of history; a raw point is a bucket with count 1. `t` is the bucket start. */
export interface HistoryBucket {
  t: number;
  mean: number;
  min: number;
  max: number;
  count: number;
}

/**
 * Where readings go. Writing a point twice with the same (device, channel, time) keeps one
 * point, as InfluxDB does, so replays after a reconnect never double a reading.
 */
export interface Storage {
  readonly kind: string;
  start(): Promise<void>;
  /** Hot path: takes the decoded readings of one frame; must not block or throw. */
  write(device: string, deviceType: string | undefined, frameTime: number, batch: TelemetryBatch): void;
  history(q: HistoryQuery): Promise<HistoryBucket[]>;
  /** Channels that have data for a device. */
  channels(device: string): Promise<number[]>;
  close(): Promise<void>;
}
