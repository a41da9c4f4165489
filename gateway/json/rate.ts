/**
 * Per-device request rate for HTTP telemetry (--http-telemetry-rate): a token bucket that refills
 * `rate` tokens per second up to `rate` (one second's burst). Kept on the device, so it grows with
 * the device table and no further.
 */
import type { DeviceState } from '../devices.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class DeviceRate {
  private readonly buckets = new WeakMap<DeviceState, Bucket>();

  /** `perSecond` 0: no limit. */
  constructor(private readonly perSecond: number) {}

  /** 0 when the device may send now (a token is spent), else the ms until it may. */
  take(device: DeviceState, now: number): number {
    const r = this.perSecond;
    if (r <= 0) return 0;
    let b = this.buckets.get(device);
    if (b === undefined) this.buckets.set(device, (b = { tokens: r, at: now }));
    b.tokens = Math.min(r, b.tokens + ((now - b.at) * r) / 1000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / r);
  }
}
