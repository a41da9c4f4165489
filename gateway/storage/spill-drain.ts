/**
 * Drains the spill file toward the database: reads records in order (one read at a time), hands
 * them out to send, splits a refused one in halves, and confirms a record once all of its parts are
 * settled, which moves the spill's read offset. A record whose checksum fails is confirmed at once
 * and its points counted as lost (they were acked when spilled).
 */
import { StorageError } from './errors.js';
import type { Spill, SpillRecord } from './spill.js';

/** A record read back from the spill (or one half of a split one). */
export interface SpillPart {
  rec: SpillRecord;
  body: Buffer;
  points: number;
  sending: boolean;
}

const READ_RETRY_MS = 1000;

export class SpillDrain {
  private readonly parts: SpillPart[] = [];
  /** Unsettled parts per record. */
  private readonly open = new Map<SpillRecord, number>();
  private reading = false;
  private retryAt = 0;

  constructor(
    private readonly spill: Spill,
    private readonly note: (err: unknown) => void,
    /** Points of a corrupt record, gone for good. */
    private readonly lose: (points: number, why: string) => void,
    /** Called after every read, whatever its outcome. */
    private readonly done: () => void,
  ) {}

  /** Records wait in the spill file, not yet read: memory batches must wait behind them. */
  get ahead(): boolean {
    return this.reading || this.spill.hasUnread;
  }

  /** A read is under way. */
  get readingNow(): boolean {
    return this.reading;
  }

  /** The oldest part not in flight; starts the next read when none is ready (unless `noRead`). */
  next(noRead: boolean, now: number): SpillPart | undefined {
    for (const p of this.parts) if (!p.sending) return p;
    if (this.spill.hasUnread && !this.reading && !noRead && now >= this.retryAt) this.read();
    return undefined;
  }

  isPart(item: object): item is SpillPart {
    return this.parts.includes(item as SpillPart);
  }

  /** A part is settled (stored or refused for good): confirms its record once all its parts are. */
  finish(p: SpillPart): void {
    const i = this.parts.indexOf(p);
    if (i !== -1) this.parts.splice(i, 1);
    const left = (this.open.get(p.rec) ?? 1) - 1;
    if (left > 0) {
      this.open.set(p.rec, left);
      return;
    }
    this.open.delete(p.rec);
    void this.spill.confirm(p.rec).catch((err: unknown) => this.note(err));
  }

  /** Replaces a refused part by its two halves, in place, so they go next. */
  split(p: SpillPart, a: Buffer, na: number, b: Buffer, nb: number): boolean {
    const i = this.parts.indexOf(p);
    if (i === -1) return false;
    this.parts.splice(i, 1, { rec: p.rec, body: a, points: na, sending: false }, { rec: p.rec, body: b, points: nb, sending: false });
    this.open.set(p.rec, (this.open.get(p.rec) ?? 1) + 1);
    return true;
  }

  private read(): void {
    this.reading = true;
    this.spill.readNext().then(
      (rec) => {
        if (!rec) return;
        if (rec.corrupt) {
          this.lose(rec.points, `a spill record at ${rec.offset} failed its checksum`);
          void this.spill.confirm(rec).catch((err: unknown) => this.note(err));
          return;
        }
        this.open.set(rec, 1);
        this.parts.push({ rec, body: rec.body, points: rec.points, sending: false });
      },
      (err: unknown) => {
        this.retryAt = Date.now() + READ_RETRY_MS;
        this.note(err instanceof StorageError ? err : new StorageError('STORAGE_SPILL_IO', String(err), { cause: err }));
      },
    ).finally(() => {
      this.reading = false;
      this.done();
    });
  }
}
