/**
 * The batched writer between the hot path and the database: frames go into an open batch (line
 * protocol, already copied out of the reused TelemetryBatch); a batch is sealed at `batchPoints` or
 * every `flushMs` and POSTed, at most `maxInFlight` at a time.
 *
 * Order of the data: [spill file, oldest] → [sealed batches in memory] → [open batch, newest]. The
 * spill is sent first; memory batches only go out directly when the spill has nothing left to read.
 * Sealed batches move to the spill (all of them, from the oldest, in flight or not, so the order
 * holds) when more than `bufferPoints` wait in memory or the oldest has waited `spillAfterMs`. When
 * the spill is full too, a new batch that would take memory past 2 × bufferPoints is dropped and
 * counted (the oldest continuous history is kept).
 *
 * Failures: a retryable one (unreachable, timeout, 5xx, missing database, credentials) backs off
 * (exponential, jittered) and sends the same data again; a whole-request 400/413 is split in halves
 * until the bad points are alone, and only those are counted as rejected; a partial write counts the
 * refused points and goes on.
 *
 * Tickets: write n gets ticket n. A batch carries the last ticket it holds; `durableTicket` follows
 * the oldest batch not yet settled (stored, spilled, refused or dropped).
 */
import { silentLogger, type Logger } from '../log.js';
import { StorageError } from './errors.js';
import type { WriteOutcome } from './influx-http.js';
import { countLines, LineBuffer, splitLines } from './line-protocol.js';
import type { Spill, SpillRecord } from './spill.js';

export interface WriterOptions {
  /** Points per request; a batch is sealed when it reaches this. */
  batchPoints: number;
  /** A batch is sealed at least this often (ms). */
  flushMs: number;
  /** Requests in flight at once. */
  maxInFlight: number;
  /** Points that may wait in memory before batches go to the spill file; twice this is the hard cap. */
  bufferPoints: number;
  /** A sealed batch not stored within this many ms goes to the spill file. */
  spillAfterMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** close() waits at most this long for the database before spilling what is left. */
  closeTimeoutMs: number;
}

/** Where batches go (the InfluxDB write client, or a fake in tests). */
export interface WriterSink {
  /** POSTs one body; never rejects. */
  send(body: Buffer): Promise<WriteOutcome>;
  /** Creates the database and retention policy when missing; rejects with a StorageError. */
  ensureSchema(): Promise<void>;
  /** Aborts requests in flight. */
  close(): void;
  /** For messages: where the database is. */
  readonly where: string;
}

class Batch {
  sending = false;
  settled = false;
  constructor(
    readonly body: Buffer,
    readonly points: number,
    /** The last ticket whose points this batch holds (0 for the first half of a split batch). */
    readonly lastTicket: number,
    readonly sealedAt: number,
  ) {}
}

/** A record read back from the spill (or one half of a split one). */
interface SpillPart {
  rec: SpillRecord;
  body: Buffer;
  points: number;
  sending: boolean;
}

type Item = Batch | SpillPart;

const EMPTY = Buffer.alloc(0);
const LOG_EVERY_MS = 10_000;

export class BatchWriter {
  private ticket = 0;
  private durable = 0;
  /** The batch being filled: encoders write lines here, then commit(). */
  readonly open = new LineBuffer();
  private openPoints = 0;
  /** Last ticket added since the last seal; 0 when none. */
  private openTicket = 0;
  private readonly queue: Batch[] = [];
  /** Points in unsettled batches in memory. */
  private memPoints = 0;
  private inFlight = 0;
  private readonly spillParts: SpillPart[] = [];
  private readonly openParts = new Map<SpillRecord, number>();
  private reading = false;
  private readRetryAt = 0;
  private spilling = false;
  /** The batches in the spill append under way, and their points. */
  private inAppend: Batch[] = [];
  private appending = 0;
  private spillFull = false;
  private spillError: StorageError | undefined;
  private spillRetryAt = 0;
  private forceSpill = false;
  private needSchema: boolean;
  private failures = 0;
  private failingSince = 0;
  private backoffUntil = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private readonly listeners: ((ticket: number) => void)[] = [];
  private notifyScheduled = false;
  private readonly lastLog = new Map<string, number>();
  written = 0;
  retried = 0;
  dropped = 0;
  rejected = 0;
  lastError: StorageError | undefined;

  constructor(
    private readonly sink: WriterSink,
    private readonly spill: Spill,
    private readonly opts: WriterOptions,
    private readonly log: Logger = silentLogger(),
    schemaReady = true,
  ) {
    this.needSchema = !schemaReady;
  }

  get durableTicket(): number {
    return this.durable;
  }

  get lastTicket(): number {
    return this.ticket;
  }

  /** Points waiting in memory (sealed and open). */
  get buffered(): number {
    return this.memPoints + this.openPoints;
  }

  /** True while the database fails (since the last successful request). */
  get failing(): boolean {
    return this.failingSince > 0;
  }

  start(): void {
    this.tick ??= setInterval(() => this.onTick(), this.opts.flushMs);
    this.tick.unref();
    this.schedulePump();
  }

  /** The database and retention policy exist (checked at start). */
  schemaReady(): void {
    this.needSchema = false;
  }

  /** A failure seen outside a write (at start): health says so, and the first sends back off. */
  noteFailure(err: StorageError): void {
    this.failed(err);
  }

  onDurable(cb: (ticket: number) => void): void {
    this.listeners.push(cb);
  }

  /**
   * Takes the lines of one frame, already written into `open` by the encoder, and returns the frame's
   * ticket. Hot path: no I/O, nothing thrown.
   */
  commit(points: number, invalid: number): number {
    const t = ++this.ticket;
    if (invalid > 0) this.refuse(invalid, new StorageError('STORAGE_POINT_INVALID', `${invalid} point(s) with a time InfluxDB cannot hold (before 1677-09-21 or after 2262-04-11) were not written`));
    if (this.closed) {
      this.open.len = 0;
      if (points > 0) this.drop(points, 'written after close()');
      this.durable = t;
      return t;
    }
    this.openPoints += points;
    this.openTicket = t;
    if (this.openPoints >= this.opts.batchPoints || this.closing) {
      this.seal();
      this.schedulePump();
    }
    return t;
  }

  /** commit() for lines given as text (newline-terminated). */
  add(text: string, points: number, invalid = 0): number {
    if (text !== '') {
      this.open.ensure(Buffer.byteLength(text));
      this.open.len += this.open.buf.write(text, this.open.len);
    }
    return this.commit(points, invalid);
  }

  /** Flushes and stops: memory goes to the database (within closeTimeoutMs) or the spill; the rest is counted as dropped. */
  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  status(): { status: 'ok' | 'degraded' | 'down'; detail?: string } {
    const spilled = this.spill.pendingPoints;
    const failing = this.failing;
    const parts: string[] = [];
    if (failing) parts.push(`InfluxDB at ${this.sink.where} is failing (${this.lastError?.code ?? 'error'}) for ${Math.round((Date.now() - this.failingSince) / 1000)} s`);
    if (this.spillError) parts.push(`the spill file fails (${this.spillError.message})`);
    else if (this.spillFull && failing) parts.push('the spill file is full: new points are dropped');
    if (spilled > 0) parts.push(`${spilled} points in the spill file${failing ? '' : ', draining'}`);
    if (this.memPoints > this.opts.bufferPoints) parts.push(`${this.memPoints} points waiting in memory`);
    if (this.needSchema && !failing) parts.push('database not set up yet');
    const detail = parts.length ? parts.join('; ') : undefined;
    if (failing && (this.spillError !== undefined || this.spillFull)) return { status: 'down', detail };
    if (detail) return { status: 'degraded', detail };
    return { status: 'ok' };
  }

  private onTick(): void {
    this.seal();
    this.checkSpill();
    this.pump();
  }

  private seal(): void {
    if (this.openTicket === 0) return;
    const points = this.openPoints;
    const b = new Batch(points > 0 ? this.open.take() : EMPTY, points, this.openTicket, Date.now());
    this.openPoints = 0;
    this.openTicket = 0;
    this.queue.push(b);
    if (points === 0) {
      b.settled = true;
      this.advance();
      return;
    }
    // Points being appended to the spill are on their way out of memory: only what stays counts.
    const staying = this.memPoints - this.appending;
    if (staying > 0 && staying + points > 2 * this.opts.bufferPoints) {
      b.settled = true;
      this.drop(points, `the memory buffer (2 × ${this.opts.bufferPoints} points) and the spill file are full`);
      this.advance();
      return;
    }
    this.memPoints += points;
  }

  private settle(b: Batch): void {
    if (b.settled) return;
    b.settled = true;
    this.memPoints -= b.points;
  }

  /** Moves durableTicket over the settled batches at the head. */
  private advance(): void {
    const q = this.queue;
    let moved = false;
    while (q.length > 0 && q[0]!.settled) {
      const b = q.shift()!;
      if (b.lastTicket > this.durable) {
        this.durable = b.lastTicket;
        moved = true;
      }
    }
    if (moved && this.listeners.length > 0 && !this.notifyScheduled) {
      this.notifyScheduled = true;
      queueMicrotask(() => {
        this.notifyScheduled = false;
        for (const l of this.listeners) l(this.durable);
      });
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.checkSpill();
      this.pump();
    });
  }

  /** Moves sealed batches to the spill file when memory holds too many or too old ones. */
  private checkSpill(): void {
    if (this.spilling || this.closed) return;
    const now = Date.now();
    if ((this.spillError || this.spillFull) && now < this.spillRetryAt) return;
    let oldest: Batch | undefined;
    for (const b of this.queue) {
      if (!b.settled) {
        oldest = b;
        break;
      }
    }
    if (!oldest) return;
    if (!(this.forceSpill || this.memPoints > this.opts.bufferPoints || now - oldest.sealedAt >= this.opts.spillAfterMs)) return;
    if (!this.spill.canFit(oldest.body.length + 64)) {
      this.spillFull = true;
      this.spillRetryAt = now + 100;
      return;
    }
    const take = this.queue.filter((b) => !b.settled);
    this.spilling = true;
    this.inAppend = take;
    for (const b of take) this.appending += b.points;
    this.spill.append(take).then(
      (n) => {
        for (let i = 0; i < n; i++) this.settle(take[i]!);
        this.spillFull = n < take.length;
        if (this.spillFull) this.spillRetryAt = Date.now() + 100;
        if (this.spillError) this.log.info({ spill: this.spill.dir }, 'the spill file works again');
        this.spillError = undefined;
      },
      (err: unknown) => {
        this.spillError = err instanceof StorageError ? err : new StorageError('STORAGE_SPILL_IO', String(err), { cause: err });
        this.spillRetryAt = Date.now() + 1000;
        this.note(this.spillError);
      },
    ).finally(() => {
      this.spilling = false;
      this.appending = 0;
      this.inAppend = [];
      this.advance();
      this.schedulePump();
    });
  }

  private pump(): void {
    if (this.closed) return;
    if (Date.now() < this.backoffUntil) {
      this.armBackoff();
      return;
    }
    while (this.inFlight < this.opts.maxInFlight) {
      const item = this.next();
      if (!item) break;
      this.send(item);
    }
  }

  /** The oldest data not in flight: spill first, memory only when the spill has nothing left to read. */
  private next(): Item | undefined {
    for (const p of this.spillParts) if (!p.sending) return p;
    if (this.spill.hasUnread || this.reading) {
      if (!this.reading && !this.closing && Date.now() >= this.readRetryAt) this.readSpill();
      return undefined;
    }
    for (const b of this.queue) if (!b.settled && !b.sending) return b;
    return undefined;
  }

  private readSpill(): void {
    this.reading = true;
    this.spill.readNext().then(
      (rec) => {
        if (!rec) return;
        if (rec.corrupt) {
          this.drop(rec.points, `a spill record at ${rec.offset} failed its checksum`);
          void this.spill.confirm(rec).catch((err: unknown) => this.note(err));
          return;
        }
        this.openParts.set(rec, 1);
        this.spillParts.push({ rec, body: rec.body, points: rec.points, sending: false });
      },
      (err: unknown) => {
        this.readRetryAt = Date.now() + 1000;
        this.note(err);
      },
    ).finally(() => {
      this.reading = false;
      this.schedulePump();
    });
  }

  private send(item: Item): void {
    this.inFlight++;
    item.sending = true;
    const go = async (): Promise<WriteOutcome> => {
      if (this.needSchema) {
        try {
          await this.sink.ensureSchema();
          this.needSchema = false;
        } catch (err) {
          return { kind: 'retry', error: err instanceof StorageError ? err : new StorageError('STORAGE_UNREACHABLE', String(err), { cause: err }) };
        }
      }
      return this.sink.send(item.body);
    };
    void go().then((o) => this.onOutcome(item, o));
  }

  private onOutcome(item: Item, o: WriteOutcome): void {
    this.inFlight--;
    item.sending = false;
    if (this.closed) return;
    switch (o.kind) {
      case 'stored':
        this.recovered();
        this.written += Math.max(0, item.points - o.refused);
        if (o.refused > 0) this.refuse(Math.min(o.refused, item.points), o.error!);
        this.finish(item);
        break;
      case 'refused':
        this.recovered();
        if (item.points > 1 && this.split(item)) break;
        this.refuse(item.points, o.error);
        this.finish(item);
        break;
      case 'retry':
        if (o.schema) this.needSchema = true;
        this.retried++;
        this.failed(o.error);
        break;
    }
    // The next request goes out now, before anyone hears of the advance (listeners may write more).
    this.pump();
    this.advance();
    this.checkSpill();
  }

  private finish(item: Item): void {
    if (item instanceof Batch) {
      this.settle(item);
      return;
    }
    const i = this.spillParts.indexOf(item);
    if (i !== -1) this.spillParts.splice(i, 1);
    const left = (this.openParts.get(item.rec) ?? 1) - 1;
    if (left > 0) {
      this.openParts.set(item.rec, left);
      return;
    }
    this.openParts.delete(item.rec);
    void this.spill.confirm(item.rec).catch((err: unknown) => this.note(err));
  }

  /** Replaces a refused item by its two halves, in place, so they go next. */
  private split(item: Item): boolean {
    const halves = splitLines(item.body);
    if (!halves) return false;
    const [a, b] = halves;
    const na = countLines(a);
    const nb = countLines(b);
    if (item instanceof Batch) {
      // Already in the spill (or on its way): that copy gets split when it is sent.
      if (item.settled || this.inAppend.includes(item)) return true;
      const i = this.queue.indexOf(item);
      if (i === -1) return false;
      this.queue.splice(i, 1, new Batch(a, na, 0, item.sealedAt), new Batch(b, nb, item.lastTicket, item.sealedAt));
      this.memPoints += na + nb - item.points;
      return true;
    }
    const i = this.spillParts.indexOf(item);
    if (i === -1) return false;
    this.spillParts.splice(i, 1, { rec: item.rec, body: a, points: na, sending: false }, { rec: item.rec, body: b, points: nb, sending: false });
    this.openParts.set(item.rec, (this.openParts.get(item.rec) ?? 1) + 1);
    return true;
  }

  private recovered(): void {
    if (this.failingSince > 0) this.log.info({ influx: this.sink.where, downMs: Date.now() - this.failingSince }, 'InfluxDB takes writes again');
    this.failures = 0;
    this.failingSince = 0;
    this.backoffUntil = 0;
  }

  private failed(err: StorageError): void {
    this.failures++;
    if (this.failingSince === 0) this.failingSince = Date.now();
    this.note(err);
    const base = Math.min(this.opts.retryMaxMs, this.opts.retryInitialMs * 2 ** Math.min(this.failures - 1, 20));
    this.backoffUntil = Date.now() + base / 2 + (Math.random() * base) / 2;
    this.armBackoff();
  }

  private armBackoff(): void {
    if (this.backoffTimer) return;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.pump();
    }, Math.max(1, this.backoffUntil - Date.now()));
    this.backoffTimer.unref();
  }

  private refuse(points: number, err: StorageError): void {
    this.rejected += points;
    this.note(err, { points });
  }

  private drop(points: number, why: string): void {
    this.dropped += points;
    this.note(new StorageError('STORAGE_DROPPED', `${points} point(s) dropped: ${why}`), { points });
  }

  /** Remembers the error and logs it, at most once per code every 10 s. */
  private note(err: unknown, extra: Record<string, unknown> = {}): void {
    const e = err instanceof StorageError ? err : new StorageError('STORAGE_SPILL_IO', String(err), { cause: err });
    this.lastError = e;
    const now = Date.now();
    if (now - (this.lastLog.get(e.code) ?? 0) < LOG_EVERY_MS) return;
    this.lastLog.set(e.code, now);
    this.log.warn({ code: e.code, retryable: e.retryable, ...extra }, e.message);
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.seal();
    this.schedulePump();
    const deadline = Date.now() + this.opts.closeTimeoutMs;
    // The database gets a chance to take what waits in memory (unless the spill must go first).
    while (Date.now() < deadline && this.memPoints > 0 && !this.failing && !this.spill.hasUnread && !this.reading) await sleep(10);
    // What is left goes to the spill.
    this.forceSpill = true;
    for (let i = 0; i < 3000 && (this.memPoints > 0 || this.spilling); i++) {
      if (!this.spilling) {
        this.checkSpill();
        if (!this.spilling) break; // nothing more fits, or the spill fails
      }
      await sleep(5);
    }
    for (const b of this.queue) {
      if (b.settled) continue;
      this.settle(b);
      this.drop(b.points, 'close() found the database and the spill file unavailable');
    }
    this.advance();
    this.closed = true;
    if (this.tick) clearInterval(this.tick);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.sink.close();
    await this.spill.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
