/**
 * When the writer may send again after a retryable failure: the shared exponential backoff
 * (devices/sdk/backoff.ts, equal jitter: 100 ms doubling to 5 s by default, never near 0), and since
 * when the database fails. One timer wakes the writer when the wait is over.
 */
import { Backoff } from '../../devices/sdk/backoff.js';

export class RetryClock {
  private readonly backoff: Backoff;
  private until = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the current run of failures began; 0 while the database answers. */
  private since = 0;

  constructor(
    opts: { retryInitialMs: number; retryMaxMs: number },
    /** Called when a wait is over. */
    private readonly wake: () => void,
    random: () => number = Math.random,
  ) {
    this.backoff = new Backoff({ initialMs: opts.retryInitialMs, maxMs: opts.retryMaxMs, random, jitter: 'equal' });
  }

  /** True while the database fails (since the last request that got an answer). */
  get failing(): boolean {
    return this.since > 0;
  }

  get failingSince(): number {
    return this.since;
  }

  /** True (and the wake-up armed) while a backoff wait runs. */
  waiting(now: number): boolean {
    if (now >= this.until) return false;
    this.arm(now);
    return true;
  }

  /** A retryable failure: the next send waits one more backoff step. */
  failed(now: number): void {
    if (this.since === 0) this.since = now;
    this.until = now + this.backoff.next();
    this.arm(now);
  }

  /** The database answered. Returns how long it had failed (0 when it had not). */
  recovered(now: number): number {
    const down = this.since > 0 ? now - this.since : 0;
    this.since = 0;
    this.until = 0;
    this.backoff.reset();
    return down;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(now: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, Math.max(1, this.until - now));
    this.timer.unref();
  }
}
