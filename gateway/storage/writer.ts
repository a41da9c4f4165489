/**
 * The batched writer between the hot path and the database: frames go into an open batch (line
 * protocol, already copied out of the reused TelemetryBatch); a batch is sealed at `batchPoints` or
 * every `flushMs` and POSTed, at most `maxInFlight` at a time. This file only orders the work; each
 * concern has its own file: batches and tickets (batches.ts), moving batches to the spill
 * (spill-feed.ts), draining it (spill-drain.ts), the retry backoff (retry.ts), status text and logs
 * (writer-status.ts).
 *
 * Order of the data: [spill file, oldest] → [sealed batches in memory] → [open batch, newest]. The
 * spill is sent first; memory batches only go out directly when the spill has nothing left to read.
 * Sealed batches move to the spill when more than `bufferPoints` wait in memory or the oldest has
 * waited `spillAfterMs`. Nothing is ever dropped to make room: when memory holds 2 × bufferPoints
 * and the spill cannot take them, admit() says no and the caller refuses new frames.
 *
 * Failures: a retryable one (unreachable, timeout, 5xx, missing database, credentials) backs off
 * and sends the same data again; a whole-request 400/413 is split in halves until the bad points are
 * alone, and only those are counted as rejected; a partial write counts the refused points and goes on.
 */
import { silentLogger, type Logger } from '../log.js';
import { Batch, Batches } from './batches.js';
import { StorageError } from './errors.js';
import type { WriteOutcome } from './influx-http.js';
import { countLines, splitLines, type LineBuffer } from './line-protocol.js';
import { Requests, type WriterSink } from './requests.js';
import { RetryClock } from './retry.js';
import type { Spill } from './spill.js';
import { SpillDrain, type SpillPart } from './spill-drain.js';
import { SpillFeed } from './spill-feed.js';
import { ErrorNotes, RefusalLog, writerStatus } from './writer-status.js';

export type { WriterSink } from './requests.js';

export interface WriterOptions {
  /** Points per request; a batch is sealed when it reaches this. */
  batchPoints: number;
  /** A batch is sealed at least this often (ms). */
  flushMs: number;
  /** Requests in flight at once. */
  maxInFlight: number;
  /** Points that may wait in memory before batches go to the spill file; twice this is the hard cap (admit() says no). */
  bufferPoints: number;
  /** A sealed batch not stored within this many ms goes to the spill file. */
  spillAfterMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** close() waits at most this long for the database, then as long again for the spill. */
  closeTimeoutMs: number;
}

type Item = Batch | SpillPart;

export class BatchWriter {
  private readonly batches = new Batches();
  private readonly feed: SpillFeed;
  private readonly drain: SpillDrain;
  private readonly retry: RetryClock;
  private readonly notes: ErrorNotes;
  private readonly refusals: RefusalLog;
  private readonly requests: Requests<Item>;
  private forceSpill = false;
  private tick: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  /** close() waits for the next change (an answer, an append) through these. */
  private changeWaiters: (() => void)[] = [];
  written = 0;
  retried = 0;
  lost = 0;
  rejected = 0;

  constructor(
    private readonly sink: WriterSink,
    private readonly spill: Spill,
    private readonly opts: WriterOptions,
    private readonly log: Logger = silentLogger(),
    schemaReady = true,
  ) {
    this.requests = new Requests<Item>(sink, opts.maxInFlight, schemaReady, (item, o) => this.onOutcome(item, o));
    this.notes = new ErrorNotes(log);
    this.refusals = new RefusalLog(log);
    const after = (): void => {
      this.batches.advance();
      this.schedulePump();
      this.changed();
    };
    this.feed = new SpillFeed(spill, log, (e) => this.notes.note(e), after);
    this.drain = new SpillDrain(spill, (e) => this.notes.note(e), (n, why) => this.lose(n, why), after);
    this.retry = new RetryClock(opts, () => this.pump());
  }

  /** The batch being filled: encoders write lines here, then commit(). */
  get open(): LineBuffer {
    return this.batches.open;
  }

  get durableTicket(): number {
    return this.batches.durableTicket;
  }

  get lastTicket(): number {
    return this.batches.lastTicket;
  }

  /** Points waiting in memory (sealed and open). */
  get buffered(): number {
    return this.batches.buffered;
  }

  /** True while the database fails (since the last request that got an answer). */
  get failing(): boolean {
    return this.retry.failing;
  }

  get lastError(): StorageError | undefined {
    return this.notes.last;
  }

  /** Writes admit() refused. */
  get refused(): number {
    return this.refusals.total;
  }

  /**
   * Memory below its hard cap of 2 × bufferPoints while the spill cannot take more (full, or failing);
   * with a working spill, below 4 × bufferPoints (a disk too slow to keep up). Points on their way to
   * the spill do not count: they are leaving.
   */
  get accepting(): boolean {
    return !this.closed && this.batches.buffered - this.feed.appending < this.memCap;
  }

  private get memCap(): number {
    return (this.feed.unavailable ? 2 : 4) * this.opts.bufferPoints;
  }

  start(): void {
    this.tick ??= setInterval(() => this.onTick(), this.opts.flushMs);
    this.tick.unref();
    this.schedulePump();
  }

  /** The database and retention policy exist (checked at start). */
  schemaReady(): void {
    this.requests.needSchema = false;
  }

  /** A failure seen outside a write (at start): health says so, and the first sends back off. */
  noteFailure(err: StorageError): void {
    this.notes.note(err);
    this.retry.failed(Date.now());
  }

  onDurable(cb: (ticket: number) => void): void {
    this.batches.onDurable(cb);
  }

  whenDurable(ticket: number, timeoutMs: number): Promise<boolean> {
    return this.batches.whenDurable(ticket, timeoutMs);
  }

  /** Whether a write may come now (see Storage.admit); a refusal is counted and logged in aggregate. */
  admit(): boolean {
    if (this.accepting) return true;
    this.refusals.refused();
    return false;
  }

  /**
   * Takes the lines of one frame, already written into `open` by the encoder, and returns the frame's
   * ticket. Hot path: no I/O, nothing thrown.
   */
  commit(points: number, invalid: number): number {
    if (invalid > 0) this.reject(invalid, new StorageError('STORAGE_POINT_INVALID', `${invalid} point(s) with a time InfluxDB cannot hold (before 1677-09-21 or after 2262-04-11) were not written`));
    const b = this.batches;
    if (this.closed) {
      // Nowhere to go: the ticket never becomes durable, so no ack covers it and its device resends it.
      b.open.len = 0;
      if (points > 0) this.lose(points, 'written after close()');
      return b.commit(0);
    }
    const t = b.commit(points);
    if (b.opened >= this.opts.batchPoints || this.closing) {
      b.seal(Date.now());
      this.schedulePump();
    }
    return t;
  }

  /** commit() for lines given as text (newline-terminated). */
  add(text: string, points: number, invalid = 0): number {
    const open = this.batches.open;
    if (text !== '') {
      open.ensure(Buffer.byteLength(text));
      open.len += open.buf.write(text, open.len);
    }
    return this.commit(points, invalid);
  }

  /** Flushes and stops: memory goes to the database (within closeTimeoutMs) or the spill; what neither takes is counted as lost and never settled. */
  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  status(): { status: 'ok' | 'degraded' | 'down'; detail?: string } {
    return writerStatus(
      {
        where: this.sink.where,
        failing: this.retry.failing,
        failingSince: this.retry.failingSince,
        lastErrorCode: this.notes.last?.code,
        spillError: this.feed.error,
        spillFull: this.feed.full,
        spilledPoints: this.spill.pendingPoints,
        memPoints: this.batches.sealed,
        bufferPoints: this.opts.bufferPoints,
        memCap: this.memCap,
        refusing: !this.accepting,
        needSchema: this.requests.needSchema,
      },
      Date.now(),
    );
  }

  private onTick(): void {
    const now = Date.now();
    this.batches.seal(now);
    this.toSpill(now);
    this.pump();
    this.refusals.flush(now, () => this.status().detail);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.toSpill(Date.now());
      this.pump();
    });
  }

  /** Moves sealed batches to the spill when memory holds too many or too old ones; else probes a failing spill. */
  private toSpill(now: number): void {
    if (this.closed) return;
    const oldest = this.batches.oldest();
    if (oldest && (this.forceSpill || this.batches.sealed > this.opts.bufferPoints || now - oldest.sealedAt >= this.opts.spillAfterMs)) {
      this.feed.move(this.batches.unsettled(), (b) => this.batches.settle(b), now);
    } else this.feed.probe(now);
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    if (this.retry.waiting(now)) return;
    while (!this.requests.full) {
      const item = this.next(now);
      if (!item) break;
      this.requests.send(item);
    }
  }

  /** The oldest data not in flight: spill first, memory only when the spill has nothing left to read. */
  private next(now: number): Item | undefined {
    const part = this.drain.next(this.closing, now);
    if (part || this.drain.ahead) return part;
    for (const b of this.batches.queue) if (!b.settled && !b.sending) return b;
    return undefined;
  }

  private onOutcome(item: Item, o: WriteOutcome): void {
    if (this.closed) return;
    const now = Date.now();
    switch (o.kind) {
      case 'stored':
        this.recovered(now);
        this.written += Math.max(0, item.points - o.refused);
        if (o.refused > 0) this.reject(Math.min(o.refused, item.points), o.error!);
        this.finish(item);
        break;
      case 'refused':
        this.recovered(now);
        if (item.points > 1 && this.split(item)) break;
        this.reject(item.points, o.error);
        this.finish(item);
        break;
      case 'retry':
        this.retried++;
        this.notes.note(o.error);
        this.retry.failed(now);
        break;
    }
    // The next request goes out now, before anyone hears of the advance (listeners may write more).
    this.pump();
    this.batches.advance();
    this.toSpill(now);
    this.changed();
  }

  private finish(item: Item): void {
    if (item instanceof Batch) this.batches.settle(item);
    else this.drain.finish(item);
  }

  /** Replaces a refused item by its two halves, in place, so they go next. */
  private split(item: Item): boolean {
    const halves = splitLines(item.body);
    if (!halves) return false;
    const [a, b] = halves;
    const na = countLines(a);
    const nb = countLines(b);
    if (!(item instanceof Batch)) return this.drain.split(item, a, na, b, nb);
    // Already in the spill (or on its way): that copy gets split when it is sent.
    if (item.settled || this.feed.includes(item)) return true;
    return this.batches.split(item, a, na, b, nb);
  }

  private recovered(now: number): void {
    const downMs = this.retry.recovered(now);
    if (downMs > 0) this.log.info({ influx: this.sink.where, downMs }, 'InfluxDB takes writes again');
  }

  private reject(points: number, err: StorageError): void {
    this.rejected += points;
    this.notes.note(err, { points });
  }

  private lose(points: number, why: string): void {
    this.lost += points;
    this.notes.note(new StorageError('STORAGE_LOST', `${points} point(s) lost: ${why}`), { points });
  }

  private changed(): void {
    if (this.changeWaiters.length > 0) for (const w of this.changeWaiters.splice(0)) w();
  }

  /** Resolves at the next answer or append, or after `ms`. */
  private nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.changeWaiters.push(done);
    });
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    const b = this.batches;
    b.seal(Date.now());
    this.schedulePump();
    // The database gets a chance to take what waits in memory (unless the spill must go first).
    let deadline = Date.now() + this.opts.closeTimeoutMs;
    while (b.sealed > 0 && !this.failing && !this.drain.ahead && Date.now() < deadline) await this.nextChange(deadline - Date.now());
    // What is left goes to the spill.
    this.forceSpill = true;
    deadline = Date.now() + this.opts.closeTimeoutMs;
    while ((b.sealed > 0 || this.feed.running) && Date.now() < deadline) {
      if (!this.feed.running) {
        this.toSpill(Date.now());
        if (!this.feed.running) break; // nothing more fits, or the spill fails
      }
      await this.nextChange(deadline - Date.now());
    }
    // Neither took the rest: it stays unsettled (no ack covers it; its devices resend it after the restart).
    const left = b.unsettled().reduce((n, x) => n + x.points, 0);
    if (left > 0) this.lose(left, 'close() found the database and the spill file unavailable; not acked, so devices resend them');
    this.closed = true;
    if (this.tick) clearInterval(this.tick);
    this.retry.stop();
    this.sink.close();
    b.wake(true);
    this.changed();
    await this.spill.close();
  }
}
