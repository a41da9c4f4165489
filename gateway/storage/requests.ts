/**
 * Write requests to the database: at most `maxInFlight` at a time, the database and retention
 * policy created first whenever they are missing (at start, or after a database was deleted).
 * Each request ends in one outcome (stored, refused, retry), handed to the writer; none throws.
 */
import { StorageError } from './errors.js';
import type { WriteOutcome } from './influx-http.js';

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

/** What can be sent: a memory batch or a spill record (or half of either). */
export interface Sendable {
  readonly body: Buffer;
  sending: boolean;
}

export class Requests<T extends Sendable> {
  private inFlight = 0;
  private schemaMissing: boolean;

  constructor(
    private readonly sink: WriterSink,
    private readonly maxInFlight: number,
    schemaReady: boolean,
    private readonly outcome: (item: T, o: WriteOutcome) => void,
  ) {
    this.schemaMissing = !schemaReady;
  }

  /** No more requests may start now. */
  get full(): boolean {
    return this.inFlight >= this.maxInFlight;
  }

  /** The database or retention policy must be created before the next write. */
  get needSchema(): boolean {
    return this.schemaMissing;
  }

  set needSchema(missing: boolean) {
    this.schemaMissing = missing;
  }

  send(item: T): void {
    this.inFlight++;
    item.sending = true;
    void this.request(item).then((o) => {
      this.inFlight--;
      item.sending = false;
      this.outcome(item, o);
    });
  }

  private async request(item: T): Promise<WriteOutcome> {
    if (this.schemaMissing) {
      try {
        await this.sink.ensureSchema();
        this.schemaMissing = false;
      } catch (err) {
        return { kind: 'retry', error: err instanceof StorageError ? err : new StorageError('STORAGE_UNREACHABLE', String(err), { cause: err }) };
      }
    }
    const o = await this.sink.send(item.body);
    if (o.kind === 'retry' && o.schema) this.schemaMissing = true;
    return o;
  }
}
