/**
 * Storage: one interface (storage.ts), two adapters (memory, InfluxDB 1.x), chosen by createStorage().
 * Defaults live in defaults.ts, in one place; STORAGE.md documents the schema, the spill and the bounds.
 */
import type { Logger } from '../log.js';
import { STORAGE_DEFAULTS } from './defaults.js';
import { StorageError } from './errors.js';
import { InfluxStorage } from './influx.js';
import { MemoryStorage } from './memory.js';
import type { Storage } from './storage.js';

export type { HistoryBucket, HistoryQuery, Storage, StorageHealth } from './storage.js';
export { StorageError, STORAGE_ERROR_CODES, type StorageErrorCode } from './errors.js';
export { MemoryStorage } from './memory.js';
export { InfluxStorage, type InfluxStorageOptions } from './influx.js';
export { DEFAULT_MEASUREMENT } from './line-protocol.js';
export { STORAGE_DEFAULTS } from './defaults.js';


export interface StorageOptions {
  /** `http://[user:password@]host:8086/database`; unset: the in-memory store. */
  influx?: string;
  /** The gateway's data folder (the spill goes to `<dataDir>/spill/`). */
  dataDir: string;
  /** Memory store: points kept per device and channel. */
  memoryPoints: number;
  /** Retention policy written to, created when missing. Default `gateway`. */
  influxRetentionPolicy?: string;
  /** Its duration when created (`30d`, `52w`, `INF`). Default `30d`. */
  influxRetention?: string;
  /** Points waiting in memory before batches spill to disk. Default 100,000. */
  bufferPoints?: number;
  /** Spill file bound in bytes. Default 1 GiB. */
  spillMaxBytes?: number;
  /** Points per write request. Default 5000. */
  batchPoints?: number;
  /** A batch is sent at least this often (ms). Default 100. */
  flushMs?: number;
  maxInFlight?: number;
  spillAfterMs?: number;
  requestTimeoutMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  closeTimeoutMs?: number;
  measurement?: string;
  log?: Logger;
}

/** The storage the options ask for: InfluxDB when `influx` is set, else memory. Throws STORAGE_CONFIG. */
export function createStorage(opts: StorageOptions): Storage {
  if (opts.influx === undefined || opts.influx === '') return new MemoryStorage(opts.memoryPoints);
  const d = STORAGE_DEFAULTS;
  const o = {
    retentionPolicy: opts.influxRetentionPolicy ?? d.retentionPolicy,
    retention: opts.influxRetention ?? d.retention,
    bufferPoints: opts.bufferPoints ?? d.bufferPoints,
    spillMaxBytes: opts.spillMaxBytes ?? d.spillMaxBytes,
    batchPoints: opts.batchPoints ?? d.batchPoints,
    flushMs: opts.flushMs ?? d.flushMs,
    maxInFlight: opts.maxInFlight ?? d.maxInFlight,
    spillAfterMs: opts.spillAfterMs ?? d.spillAfterMs,
    requestTimeoutMs: opts.requestTimeoutMs ?? d.requestTimeoutMs,
    retryInitialMs: opts.retryInitialMs ?? d.retryInitialMs,
    retryMaxMs: opts.retryMaxMs ?? d.retryMaxMs,
    closeTimeoutMs: opts.closeTimeoutMs ?? d.closeTimeoutMs,
  };
  const positive = ['bufferPoints', 'spillMaxBytes', 'batchPoints', 'flushMs', 'maxInFlight', 'requestTimeoutMs', 'retryInitialMs', 'retryMaxMs'] as const;
  for (const k of positive) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new StorageError('STORAGE_CONFIG', `storage option ${k} must be a whole number ≥ 1 (got ${String(o[k])})`);
  }
  if (!/^(INF|(\d+(ns|u|µ|ms|s|m|h|d|w))+)$/.test(o.retention)) {
    throw new StorageError('STORAGE_CONFIG', `--influx-retention "${o.retention}" is not an InfluxQL duration (e.g. 30d, 52w, 12h, INF)`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(o.retentionPolicy)) {
    throw new StorageError('STORAGE_CONFIG', `--influx-retention-policy "${o.retentionPolicy}" may hold only letters, digits, _ . -`);
  }
  return new InfluxStorage({ url: opts.influx, dataDir: opts.dataDir, measurement: opts.measurement, log: opts.log, ...o });
}
