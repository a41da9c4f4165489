/**
 * Moves sealed batches from memory to the spill file (all unsettled ones, oldest first, in flight or
 * not, so the order holds), and knows whether the spill can take more now. Both of its bad states
 * describe the present: "full" is checked again against the spill's bound each time it is asked
 * (space comes back as the spill drains), and "failing" (ENOSPC, EIO) clears as soon as an append
 * or a probe (one every second while failing and nothing else writes) succeeds.
 */
import type { Logger } from '../log.js';
import type { Batch } from './batches.js';
import { StorageError } from './errors.js';
import type { Spill } from './spill.js';

/** Bytes a record needs beyond its body (header, and room for a new segment's header). */
const RECORD_OVERHEAD = 64;
const FULL_RETRY_MS = 100;
const ERROR_RETRY_MS = 1000;

export class SpillFeed {
  /** Batches in the append under way. */
  private inAppend: Batch[] = [];
  /** Their points: on their way out of memory. */
  private appendingPoints = 0;
  private busy = false;
  /** Bytes the last batch that did not fit needed; 0 when the last append fit. */
  private needed = 0;
  private failure: StorageError | undefined;
  private retryAt = 0;

  constructor(
    private readonly spill: Spill,
    private readonly log: Logger,
    /** Called with each error (for lastError and the throttled log). */
    private readonly note: (err: StorageError) => void,
    /** Called after every append or probe, whatever its outcome. */
    private readonly done: () => void,
  ) {}

  /** An append or probe runs. */
  get running(): boolean {
    return this.busy;
  }

  /** Points being appended now. */
  get appending(): number {
    return this.appendingPoints;
  }

  /** The spill is at its bound: the oldest waiting batch did not fit, and still would not. */
  get full(): boolean {
    return this.needed > 0 && !this.spill.canFit(this.needed);
  }

  /** The last append or probe failed (ENOSPC, EIO, ...). */
  get error(): StorageError | undefined {
    return this.failure;
  }

  /** The spill cannot take more now. */
  get unavailable(): boolean {
    return this.failure !== undefined || this.full;
  }

  includes(b: Batch): boolean {
    return this.inAppend.includes(b);
  }

  /** Appends `take` (unsettled batches, oldest first) unless an append runs or a failure's wait is not over; settles what reached the disk. */
  move(take: Batch[], settle: (b: Batch) => void, now: number): void {
    if (this.busy || take.length === 0) return;
    if ((this.failure !== undefined || this.needed > 0) && now < this.retryAt) return;
    const need = take[0]!.body.length + RECORD_OVERHEAD;
    if (!this.spill.canFit(need)) {
      this.needed = need;
      this.retryAt = now + FULL_RETRY_MS;
      return;
    }
    this.busy = true;
    this.inAppend = take;
    for (const b of take) this.appendingPoints += b.points;
    this.spill.append(take).then(
      (n) => {
        for (let i = 0; i < n; i++) settle(take[i]!);
        this.needed = n < take.length ? take[n]!.body.length + RECORD_OVERHEAD : 0;
        if (this.needed > 0) this.retryAt = Date.now() + FULL_RETRY_MS;
        this.works();
      },
      (err: unknown) => this.fails(err),
    ).finally(() => {
      this.busy = false;
      this.appendingPoints = 0;
      this.inAppend = [];
      this.done();
    });
  }

  /** While failing and nothing needs spilling: tries a small write now and then, so health clears when the disk takes writes again. */
  probe(now: number): void {
    if (this.busy || this.failure === undefined || now < this.retryAt) return;
    this.busy = true;
    this.spill.probe().then(
      () => this.works(),
      (err: unknown) => this.fails(err),
    ).finally(() => {
      this.busy = false;
      this.done();
    });
  }

  private works(): void {
    if (this.failure === undefined) return;
    this.failure = undefined;
    this.log.info({ spill: this.spill.dir }, 'the spill file takes writes again');
  }

  private fails(err: unknown): void {
    this.failure = err instanceof StorageError ? err : new StorageError('STORAGE_SPILL_IO', String(err), { cause: err });
    this.retryAt = Date.now() + ERROR_RETRY_MS;
    this.note(this.failure);
  }
}
