/** Reconnect delays: exponential from `initialMs`, capped at `maxMs`, with jitter so tabs spread out. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs = 500,
    private readonly maxMs = 10_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failed attempts since the last success. */
  get failures(): number {
    return this.attempt;
  }

  /** The next delay: somewhere in [half, all] of min(max, initial × 2^attempt). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}
