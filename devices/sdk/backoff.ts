/**
 * Reconnect delays: exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"): the n-th delay (n from 0) is random() * min(maxMs, initialMs * 2^n).
 * Pure: no timers here, so it is tested without any clock.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Returns a number in [0, 1). Math.random by default; tests inject their own. */
  random: () => number;
}

/** 2^52 * initialMs is far past any maxMs; capping the exponent keeps the product finite. */
const MAX_EXPONENT = 52;

export class Backoff {
  #attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in ms; each call counts one more failed attempt. */
  next(): number {
    const { initialMs, maxMs, random } = this.options;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt, MAX_EXPONENT));
    this.#attempt++;
    return random() * ceiling;
  }

  /** Starts over from initialMs (after a connection proved healthy). */
  reset(): void {
    this.#attempt = 0;
  }
}
