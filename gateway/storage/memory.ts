/**
 * The default store: a bounded, time-sorted ring per (device, channel) in memory. Oldest points go
 * first when a ring is full. Nothing survives a restart; use InfluxDB for that.
 */
import type { TelemetryBatch } from '../../devices/codec/index.js';
import { distinctTimes } from './line-protocol.js';
import type { HistoryBucket, HistoryQuery, Storage, StorageHealth } from './storage.js';

const INITIAL_CAPACITY = 16;

class Series {
  times: Float64Array;
  values: Float64Array;
  start = 0;
  len = 0;
  constructor(private readonly max: number) {
    const cap = Math.min(INITIAL_CAPACITY, max);
    this.times = new Float64Array(cap);
    this.values = new Float64Array(cap);
  }

  private at(i: number): number {
    return (this.start + i) % this.times.length;
  }

  /** Logical index of the first point with time >= t. */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[this.at(mid)]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(t: number, v: number): void {
    if (this.len > 0) {
      const last = this.at(this.len - 1);
      if (t === this.times[last]) {
        this.values[last] = v;
        return;
      }
      if (t < this.times[last]!) {
        this.insertOutOfOrder(t, v);
        return;
      }
    }
    if (this.len === this.times.length) {
      if (this.len < this.max) this.grow();
      else {
        this.start = (this.start + 1) % this.times.length;
        this.len--;
      }
    }
    const i = this.at(this.len);
    this.times[i] = t;
    this.values[i] = v;
    this.len++;
  }

  private insertOutOfOrder(t: number, v: number): void {
    const k = this.lowerBound(t);
    if (k < this.len && this.times[this.at(k)] === t) {
      this.values[this.at(k)] = v;
      return;
    }
    if (this.len === this.times.length) {
      if (this.len < this.max) this.grow();
      else if (k === 0) return; // older than everything kept in a full ring
      else {
        // Drop the oldest to make room; the insert point moves down by one.
        this.start = (this.start + 1) % this.times.length;
        this.len--;
        this.shiftIn(k - 1, t, v);
        return;
      }
    }
    this.shiftIn(k, t, v);
  }

  private shiftIn(k: number, t: number, v: number): void {
    for (let j = this.len; j > k; j--) {
      const to = this.at(j);
      const from = this.at(j - 1);
      this.times[to] = this.times[from]!;
      this.values[to] = this.values[from]!;
    }
    this.times[this.at(k)] = t;
    this.values[this.at(k)] = v;
    this.len++;
  }

  private grow(): void {
    const cap = Math.min(this.max, this.times.length * 2);
    const times = new Float64Array(cap);
    const values = new Float64Array(cap);
    for (let i = 0; i < this.len; i++) {
      times[i] = this.times[this.at(i)]!;
      values[i] = this.values[this.at(i)]!;
    }
    this.times = times;
    this.values = values;
    this.start = 0;
  }

  buckets(from: number, to: number, points: number): HistoryBucket[] {
    const lo = this.lowerBound(from);
    const hi = this.lowerBound(to + 1);
    const n = hi - lo;
    const out: HistoryBucket[] = [];
    if (n <= 0) return out;
    if (n <= points) {
      for (let i = lo; i < hi; i++) {
        const v = this.values[this.at(i)]!;
        out.push({ t: this.times[this.at(i)]!, mean: v, min: v, max: v, count: 1 });
      }
      return out;
    }
    // Fixed-width time buckets, as InfluxQL GROUP BY time() gives; empty buckets are left out.
    const width = Math.max(1, Math.ceil((to - from + 1) / points));
    let cur: HistoryBucket | undefined;
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const t = this.times[this.at(i)]!;
      const v = this.values[this.at(i)]!;
      const b = from + Math.floor((t - from) / width) * width;
      if (cur === undefined || cur.t !== b) {
        if (cur) cur.mean = sum / cur.count;
        cur = { t: b, mean: v, min: v, max: v, count: 0 };
        sum = 0;
        out.push(cur);
      }
      cur.count++;
      sum += v;
      if (v < cur.min) cur.min = v;
      if (v > cur.max) cur.max = v;
    }
    if (cur) cur.mean = sum / cur.count;
    return out;
  }
}

/**
 * Points are (device, time) pairs, as in InfluxDB: `written` counts the distinct times of each write.
 * A write is settled when write() returns, so durableTicket is always the last ticket (there is no
 * onDurable: poll durableTicket).
 */
export class MemoryStorage implements Storage {
  readonly kind = 'memory';
  private readonly devices = new Map<string, Map<number, Series>>();
  private ticket = 0;
  private written = 0;

  constructor(private readonly pointsPerSeries: number) {}

  get durableTicket(): number {
    return this.ticket;
  }

  async start(): Promise<void> {}

  health(): StorageHealth {
    return { status: 'ok', buffered: 0, spilledBytes: 0, spilledPoints: 0, written: this.written, retried: 0, dropped: 0, rejected: 0 };
  }

  write(device: string, _deviceType: string | undefined, frameTime: number, batch: TelemetryBatch): number {
    this.written += distinctTimes(batch);
    let channels = this.devices.get(device);
    if (channels === undefined) {
      channels = new Map();
      this.devices.set(device, channels);
    }
    for (let i = 0; i < batch.count; i++) {
      const ch = batch.channels[i]!;
      let s = channels.get(ch);
      if (s === undefined) {
        s = new Series(this.pointsPerSeries);
        channels.set(ch, s);
      }
      s.insert(frameTime + batch.offsets[i]!, batch.values[i]!);
    }
    return ++this.ticket;
  }

  async history(q: HistoryQuery): Promise<HistoryBucket[]> {
    const s = this.devices.get(q.device)?.get(q.channel);
    return s ? s.buckets(q.from, q.to, q.points) : [];
  }

  async channels(device: string): Promise<number[]> {
    return [...(this.devices.get(device)?.keys() ?? [])].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.devices.clear();
  }
}
