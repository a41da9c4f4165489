/**
 * Retry delays: exponential backoff with jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"). With ceiling = min(maxMs, initialMs * 2^n) for the n-th delay (n from 0): full jitter
 * (the default, the SDK's reconnects) is random() * ceiling; equal jitter (the gateway's storage
 * retries, where a delay near 0 would only hammer a failing database) is ceiling / 2 + random() * ceiling / 2.
 * Pure: no timers here, so it is tested without any clock. Shared by the SDK and the gateway.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Returns a number in [0, 1). Math.random by default; tests inject their own. */
  random: () => number;
  /** 'full' (default) or 'equal', see above. */
  jitter?: 'full' | 'equal';
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
    return this.options.jitter === 'equal' ? ceiling / 2 + (random() * ceiling) / 2 : random() * ceiling;
  }

  /** Starts over from initialMs (after a connection proved healthy). */
  reset(): void {
    this.#attempt = 0;
  }
}
