/**
 * The default store: a bounded, time-sorted ring per (device, channel) in memory. Oldest points go
 * first when a ring is full. Nothing survives a restart; use InfluxDB for that.
 */
import type { TelemetryBatch } from '../../devices/codec/index.js';
import { distinctTimes } from './line-protocol.js';
import { ChunkPool, Series } from './series.js';
import type { HistoryBucket, HistoryQuery, Storage, StorageHealth, TimeRange } from './storage.js';

/** Any time a frame can carry: the rings keep whatever they are given. */
const ANY_TIME: Readonly<TimeRange> = Object.freeze({ from: Number.NEGATIVE_INFINITY, to: Number.POSITIVE_INFINITY });

/**
 * Points are (device, time) pairs, as in InfluxDB: `written` counts the distinct times of each write.
 * A write is settled when write() returns, so durableTicket is always the last ticket (there is no
 * onDurable: poll durableTicket), and a write is always admitted (the rings evict their oldest).
 */
export class MemoryStorage implements Storage {
  readonly kind = 'memory';
  private readonly devices = new Map<string, Map<number, Series>>();
  private readonly pool = new ChunkPool();
  private ticket = 0;
  private written = 0;

  constructor(private readonly pointsPerSeries: number) {}

  get durableTicket(): number {
    return this.ticket;
  }

  async start(): Promise<void> {}

  admit(): boolean {
    return true;
  }

  timeRange(): Readonly<TimeRange> {
    return ANY_TIME;
  }

  async whenDurable(ticket: number): Promise<boolean> {
    return ticket <= this.ticket;
  }

  health(): StorageHealth {
    return { status: 'ok', buffered: 0, spilledBytes: 0, spilledPoints: 0, written: this.written, retried: 0, refused: 0, lost: 0, rejected: 0 };
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
        s = new Series(this.pool, this.pointsPerSeries);
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

  async deleteDevice(device: string): Promise<void> {
    const channels = this.devices.get(device);
    if (channels === undefined) return;
    for (const s of channels.values()) s.release();
    this.devices.delete(device);
  }

  async channels(device: string): Promise<number[]> {
    return [...(this.devices.get(device)?.keys() ?? [])].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    for (const channels of this.devices.values()) for (const s of channels.values()) s.release();
    this.devices.clear();
  }
}
