/**
 * InfluxDB 1.x storage. Writes: line protocol built on the hot path (line-protocol.ts), batched and
 * retried by the writer (writer.ts), spilled to disk while the database is away (spill.ts), POSTed
 * by a small keep-alive client (influx-http.ts). Admin and queries: the `influx` package.
 * History is computed by InfluxDB (`GROUP BY time()`), so no query pulls more than `points` rows.
 */
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import type { TelemetryBatch } from '../../devices/codec/index.js';
import { silentLogger, type Logger } from '../log.js';
import { StorageError, type StorageErrorCode } from './errors.js';
import { InfluxWriteClient, parseInfluxUrl, redact, type InfluxTarget } from './influx-http.js';
import { DEFAULT_MEASUREMENT, fieldName, LineEncoder, MAX_TIME_MS, MIN_TIME_MS, seriesPrefix } from './line-protocol.js';
import { Spill } from './spill.js';
import { durationMs } from './retention.js';
import type { HistoryBucket, HistoryQuery, Storage, StorageHealth, TimeRange } from './storage.js';
import { BatchWriter, type WriterOptions } from './writer.js';

export interface InfluxStorageOptions extends WriterOptions {
  /** http://[user:password@]host:8086/database */
  url: string;
  /** The spill goes to `<dataDir>/spill/`. */
  dataDir: string;
  /** Retention policy the gateway writes to and creates when missing (not made the default). */
  retentionPolicy: string;
  /** Its duration when created: an InfluxQL duration (`30d`, `52w`) or `INF`. */
  retention: string;
  spillMaxBytes: number;
  /** Per request, writes and queries. */
  requestTimeoutMs: number;
  measurement?: string;
  log?: Logger;
}

/** Readings this close to the end of the retention are refused too: they would expire on their way to InfluxDB. */
const RETENTION_MARGIN_MS = 60_000;

/** The influx package's pool: no host blackout of its own (the writer does the backing off). */
const NO_BACKOFF = { getDelay: () => 0, next: () => NO_BACKOFF, reset: () => NO_BACKOFF };

export class InfluxStorage implements Storage {
  readonly kind = 'influxdb';
  private readonly target: InfluxTarget;
  private readonly client: InfluxDB;
  private readonly queryAgent: Agent;
  private readonly writer: BatchWriter;
  private readonly encoder = new LineEncoder();
  private readonly prefixes = new Map<string, { type: string | undefined; prefix: Buffer }>();
  private readonly measurement: string;
  private readonly from: string;
  private readonly log: Logger;
  private readonly spill: Spill;
  private closing: Promise<void> | undefined;
  /** The retention policy's duration (0 = forever): from the database once seen, else from the setting. */
  private retentionMs: number;
  private readonly range: TimeRange = { from: MIN_TIME_MS, to: MAX_TIME_MS };

  constructor(private readonly opts: InfluxStorageOptions) {
    this.target = parseInfluxUrl(opts.url);
    this.log = opts.log ?? silentLogger();
    this.retentionMs = durationMs(opts.retention);
    this.measurement = opts.measurement ?? DEFAULT_MEASUREMENT;
    this.from = `${ident(opts.retentionPolicy)}.${ident(this.measurement)}`;
    const t = this.target;
    this.queryAgent = t.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 4 }) : new Agent({ keepAlive: true, maxSockets: 4 });
    this.client = new InfluxDB({
      host: t.hostname,
      port: t.port,
      path: t.basePath,
      protocol: t.protocol === 'https:' ? 'https' : 'http',
      database: t.database,
      username: t.username,
      password: t.password,
      options: { agent: this.queryAgent },
      pool: { maxRetries: 0, requestTimeout: opts.requestTimeoutMs, backoff: NO_BACKOFF },
    });
    const sink = new InfluxWriteClient(t, opts.retentionPolicy, opts.requestTimeoutMs, opts.maxInFlight);
    this.spill = new Spill(join(opts.dataDir, 'spill'), opts.spillMaxBytes);
    this.writer = new BatchWriter(
      { send: (b) => sink.send(b), ensureSchema: () => this.ensureSchema(), close: () => sink.close(), where: sink.where },
      this.spill,
      opts,
      this.log,
      false,
    );
  }

  get durableTicket(): number {
    return this.writer.durableTicket;
  }

  /**
   * Opens the spill (a non-empty one drains first), then creates the database and retention policy
   * when missing. An unreachable database does not stop the start (points wait and spill; health
   * says degraded); refused credentials or a bad setting do (STORAGE_UNAUTHORIZED, STORAGE_CONFIG).
   */
  async start(): Promise<void> {
    let report;
    try {
      report = await this.spill.open();
    } catch (err) {
      throw err instanceof StorageError ? err : new StorageError('STORAGE_SPILL_IO', `cannot open the spill folder ${this.spill.dir}: ${(err as Error).message}`, { cause: err });
    }
    if (report.points > 0 || report.tornBytes > 0) {
      this.log.info({ spill: this.spill.dir, points: report.points, bytes: report.bytes, tornBytes: report.tornBytes }, 'spilled points found: they drain to InfluxDB first');
    }
    try {
      await withTimeout(this.ensureSchema(), Math.min(5000, this.opts.requestTimeoutMs), `InfluxDB at ${redact(this.opts.url)} did not answer within`);
      this.writer.schemaReady();
    } catch (err) {
      const e = toStorageError(err, 'STORAGE_UNREACHABLE');
      if (e.code === 'STORAGE_UNAUTHORIZED' || !e.retryable) throw e;
      this.log.warn({ code: e.code, influx: redact(this.opts.url) }, `InfluxDB is not reachable yet; points wait in memory and the spill file: ${e.message}`);
      this.writer.noteFailure(e);
    }
    this.writer.start();
  }

  write(device: string, deviceType: string | undefined, frameTime: number, batch: TelemetryBatch): number {
    const w = this.writer;
    const mark = w.open.len;
    try {
      const e = this.encoder.encode(this.prefix(device, deviceType), frameTime, batch, w.open);
      return w.commit(e.points, e.invalid);
    } catch (err) {
      w.open.len = mark;
      this.log.error({ err, device }, 'could not encode a frame for InfluxDB');
      return w.commit(0, batch.count);
    }
  }

  onDurable(cb: (durableTicket: number) => void): void {
    this.writer.onDurable(cb);
  }

  whenDurable(ticket: number, timeoutMs: number): Promise<boolean> {
    return this.writer.whenDurable(ticket, timeoutMs);
  }

  admit(): boolean {
    return this.writer.admit();
  }

  /**
   * Not older than the retention policy (InfluxDB drops such points at write time, "points beyond
   * retention policy"), with a minute to spare for the way to the database, nor past 2262-04-11.
   */
  timeRange(now: number): Readonly<TimeRange> {
    this.range.from = this.retentionMs > 0 ? Math.max(MIN_TIME_MS, now - this.retentionMs + RETENTION_MARGIN_MS) : MIN_TIME_MS;
    return this.range;
  }

  health(): StorageHealth {
    const w = this.writer;
    const s = w.status();
    const h: StorageHealth = {
      status: s.status,
      buffered: w.buffered,
      spilledBytes: this.spill.bytes,
      spilledPoints: this.spill.pendingPoints,
      written: w.written,
      retried: w.retried,
      refused: w.refused,
      lost: w.lost,
      rejected: w.rejected,
    };
    if (s.detail) h.detail = s.detail;
    if (w.lastError) h.lastError = `${w.lastError.code}: ${w.lastError.message}`;
    return h;
  }

  async history(q: HistoryQuery): Promise<HistoryBucket[]> {
    const from = clampTime(q.from);
    const to = clampTime(q.to);
    const points = Math.max(1, Math.floor(q.points));
    if (to < from) return [];
    const width = Math.max(1, Math.ceil((to - from + 1) / points));
    // Buckets start at from + k·width, as in the memory store: GROUP BY time()'s offset moves InfluxDB's epoch-aligned grid there.
    const offset = ((from % width) + width) % width;
    const f = ident(fieldName(q.channel));
    const where = `WHERE "device" = ${literal(q.device)} AND time >= ${ns(from)} AND time <= ${ns(to)}`;
    const agg = await this.query(`SELECT mean(${f}), min(${f}), max(${f}), count(${f}) FROM ${this.from} ${where} GROUP BY time(${width}ms, ${offset}ms) fill(none)`);
    const buckets: HistoryBucket[] = [];
    let total = 0;
    for (const row of agg) {
      const count = Number(row[4]);
      if (!(count > 0)) continue;
      total += count;
      buckets.push({ t: Number(row[0]), mean: Number(row[1]), min: Number(row[2]), max: Number(row[3]), count });
    }
    if (total === 0 || total > points) return buckets;
    // Few enough for raw points.
    const raw = await this.query(`SELECT ${f} FROM ${this.from} ${where} LIMIT ${points}`);
    const out: HistoryBucket[] = [];
    for (const row of raw) {
      if (row[1] === null || row[1] === undefined) continue;
      const v = Number(row[1]);
      out.push({ t: Number(row[0]), mean: v, min: v, max: v, count: 1 });
    }
    return out;
  }

  /** Drops the device's series in every retention policy of the database (InfluxQL DROP SERIES, a POST). */
  async deleteDevice(device: string): Promise<void> {
    let res: any;
    try {
      res = await this.client.queryRaw(`DROP SERIES FROM ${ident(this.measurement)} WHERE "device" = ${literal(device)}`, { database: this.target.database, method: 'POST' } as never);
    } catch (err) {
      throw toStorageError(err, 'STORAGE_QUERY_FAILED');
    }
    const error = res?.results?.[0]?.error;
    if (error && !/database not found/.test(String(error))) throw new StorageError('STORAGE_QUERY_FAILED', `InfluxDB refused to drop the series of ${device}: ${error}`);
  }

  /** Channels with data for the device: one count(*) over its series (reads its data; not for hot paths). */
  async channels(device: string): Promise<number[]> {
    const res = await this.queryRaw(`SELECT count(*) FROM ${this.from} WHERE "device" = ${literal(device)} AND time >= ${ns(MIN_TIME_MS)} AND time <= ${ns(MAX_TIME_MS)}`);
    const series = res?.series?.[0];
    if (!series) return [];
    const out: number[] = [];
    const row: unknown[] = series.values?.[0] ?? [];
    series.columns.forEach((c: string, i: number) => {
      const m = /^count_c(\d+)$/.exec(c);
      if (m && Number(row[i]) > 0) out.push(Number(m[1]));
    });
    return out.sort((a, b) => a - b);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writer.close();
      this.queryAgent.destroy();
    })();
    return this.closing;
  }

  /**
   * CREATE DATABASE (idempotent), then the retention policy when missing (never altered: operators
   * own it). A user without admin rights is fine when both already exist.
   */
  async ensureSchema(): Promise<void> {
    const db = this.target.database;
    const rp = this.opts.retentionPolicy;
    let denied: StorageError | undefined;
    try {
      await this.client.createDatabase(db);
    } catch (err) {
      denied = toStorageError(err, 'STORAGE_CONFIG');
      if (denied.code !== 'STORAGE_UNAUTHORIZED' && !/privilege|authoriz/i.test(denied.message)) throw denied;
    }
    let rps: { name: string; duration: string }[];
    try {
      rps = await this.client.showRetentionPolicies(db);
    } catch (err) {
      throw denied ?? toStorageError(err, 'STORAGE_CONFIG');
    }
    const found = rps.find((r) => r.name === rp);
    if (found) {
      // Operators own an existing policy: its duration, not our setting, decides what InfluxDB keeps.
      this.retentionMs = durationMs(found.duration);
      return;
    }
    try {
      await this.client.createRetentionPolicy(rp, { database: db, duration: this.opts.retention, replication: 1 });
      this.retentionMs = durationMs(this.opts.retention);
      this.log.info({ database: db, retentionPolicy: rp, duration: this.opts.retention }, 'created the InfluxDB retention policy');
    } catch (err) {
      if (/already exists/.test(String((err as Error).message))) return;
      const e = toStorageError(err, 'STORAGE_CONFIG');
      throw new StorageError(e.code, `could not create the retention policy "${rp}" on "${db}" (create it, or name an existing one with --influx-retention-policy): ${e.message}`, { cause: err });
    }
  }

  private prefix(device: string, type: string | undefined): Buffer {
    const c = this.prefixes.get(device);
    if (c !== undefined && c.type === type) return c.prefix;
    if (this.prefixes.size >= 200_000) this.prefixes.clear();
    const prefix = Buffer.from(seriesPrefix(this.measurement, device, type));
    this.prefixes.set(device, { type, prefix });
    return prefix;
  }

  private async query(q: string): Promise<unknown[][]> {
    const res = await this.queryRaw(q);
    return (res?.series?.[0]?.values as unknown[][] | undefined) ?? [];
  }

  private async queryRaw(q: string): Promise<any> {
    let res: any;
    try {
      res = await this.client.queryRaw(q, { database: this.target.database, precision: 'ms' });
    } catch (err) {
      throw toStorageError(err, 'STORAGE_QUERY_FAILED');
    }
    const r = res?.results?.[0];
    if (r?.error) {
      if (/database not found/.test(String(r.error))) return undefined; // nothing written yet
      throw new StorageError('STORAGE_QUERY_FAILED', `InfluxDB refused the query: ${r.error}`);
    }
    return r;
  }
}

/** Maps errors of the influx package and of sockets to StorageErrors. */
export function toStorageError(err: unknown, fallback: StorageErrorCode): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { message?: string; code?: string; res?: { statusCode?: number } };
  const msg = String(e?.message ?? err);
  const status = e?.res?.statusCode;
  if (status === 401 || status === 403) return new StorageError('STORAGE_UNAUTHORIZED', `InfluxDB refused the credentials: ${msg}`, { cause: err });
  if (typeof e?.code === 'string' && /^E[A-Z]+/.test(e.code)) return new StorageError('STORAGE_UNREACHABLE', `InfluxDB: ${e.code} ${msg}`, { cause: err });
  if (/timed out/i.test(msg)) return new StorageError('STORAGE_TIMEOUT', msg, { cause: err });
  if (/No host available|socket hang up/i.test(msg) || (status !== undefined && status >= 500)) return new StorageError('STORAGE_UNREACHABLE', `InfluxDB: ${msg}`, { cause: err });
  if ((err as { constructor?: { name?: string } } | undefined)?.constructor?.name === 'ServiceNotAvailableError') return new StorageError('STORAGE_SERVER_ERROR', `InfluxDB: ${msg}`, { cause: err });
  return new StorageError(fallback, `InfluxDB: ${msg}`, { cause: err });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new StorageError('STORAGE_TIMEOUT', `${what} ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

function clampTime(t: number): number {
  return Math.min(MAX_TIME_MS, Math.max(MIN_TIME_MS, Math.trunc(t)));
}

/** An InfluxQL time literal in ns (plain integers compare with time in nanoseconds). */
function ns(ms: number): string {
  return (BigInt(ms) * 1_000_000n).toString();
}

/** A double-quoted InfluxQL identifier. */
export function ident(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A single-quoted InfluxQL string literal. */
export function literal(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
