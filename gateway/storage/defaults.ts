/**
 * Every storage default, in one place: the gateway's flags (config.ts) and createStorage() both read
 * them from here, and STORAGE.md documents them.
 */
export const STORAGE_DEFAULTS = {
  retentionPolicy: 'gateway',
  retention: '30d',
  /** Points waiting in memory before batches go to the spill; twice this and frames are refused (STORAGE_FULL). */
  bufferPoints: 100_000,
  spillMaxBytes: 1024 * 1024 * 1024,
  batchPoints: 5000,
  flushMs: 100,
  maxInFlight: 2,
  spillAfterMs: 2000,
  requestTimeoutMs: 10_000,
  retryInitialMs: 100,
  retryMaxMs: 5000,
  closeTimeoutMs: 5000,
} as const;
