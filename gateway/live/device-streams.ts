/**
 * Turns ingested readings into one message per device per flush: coalesced, min/max-downsampled
 * when a device sends faster than a chart can draw, numbered by a per-device seq, and kept in a
 * ring so a client can resume after a gap. Only devices someone watches (or watched in the last
 * few minutes) cost anything beyond one Map lookup per frame.
 *
 * A stream that was quiet for a whole interval when its next points came is `soon`: flushSoon()
 * sends it at the next loop turn, touching only such streams; every other active stream waits for
 * the interval's flush(). So a flush between intervals costs what changed, not what is watched.
 */
import type { DeviceMessage, LivePoint } from '../../devices/api/json.js';
import type { FrameHeader, TelemetryBatch } from '../../devices/codec/index.js';
import type { DeviceState } from '../devices.js';

/** How long a device's stream keeps being built after its last watcher left, so that watcher can resume. */
const GRACE_MS = 5 * 60_000;
/** Messages every stream keeps whatever the byte budget: a second of resume at the default flush. */
const MIN_RING = 10;

interface Pending {
  channels: number[];
  times: number[];
  values: number[];
  bools: boolean[];
}

/** Coalesced points of one flush: another instance's (live-relay.ts), or this one's to pass on. */
export type Relayed = Pick<DeviceMessage, 'points' | 'downsampled'>;

interface Stream {
  seq: number;
  /** Points from other instances since the last flush: shown here, never relayed again. */
  relayed: Relayed | undefined;
  /** In this flush's active list already (local and relayed points both put it there). */
  active: boolean;
  /** In the soon list too: it was quiet for an interval when its points came. */
  soon: boolean;
  /** When its last message went out (ms): a stream gets at most one message per flush interval. */
  sentAt: number;
  /** When the oldest pending point arrived (ms), for the latency metric. */
  pendingSince: number;
  watchers: number;
  unwatchedAt: number;
  pending: Pending;
  /** Ring of the last messages' JSON; it grows with them up to --live-replay, so a followed device that sends nothing costs none. */
  ring: (string | undefined)[];
  ringHead: number;
  ringSize: number;
}

/** A flushed `device` message: its JSON text and what the hub needs beside it. */
export interface FlushedMessage {
  id: string;
  seq: number;
  json: string;
  /** ms the oldest point of this message waited in the gateway. */
  waitedMs: number;
  /** The points ingested here (not relayed from another instance), when there are any: what live-relay.ts passes on. */
  local: Relayed | undefined;
}

export class DeviceStreams {
  private readonly streams = new Map<string, Stream>();
  private readonly active: Stream[] = [];
  private readonly activeIds: string[] = [];
  /** Active streams that were quiet for an interval: flushSoon() sends them (indexes into nothing; ids beside). */
  private readonly soon: Stream[] = [];
  private readonly soonIds: string[] = [];
  /** Running mean size of a message, for the byte budget. */
  private meanBytes = 256;
  /** Characters of messages held in all rings now. */
  ringBytes = 0;
  /** Streams nobody watches are dropped after their grace time: looked for once a second, not every flush. */
  private expiredAt = 0;

  /**
   * `replay`: messages kept per stream; `replayBytes`: about the most kept over all streams. With
   * many watched devices each ring keeps less (never under MIN_RING), so a client that watches
   * the whole fleet cannot make the gateway hold gigabytes of old messages.
   */
  constructor(
    private readonly maxPointsPerChannel: number,
    private readonly replay: number,
    private readonly replayBytes = Infinity,
    /** A stream whose last message is at least this old sends its next points at once (flushSoon). */
    private readonly quietMs = Infinity,
  ) {}

  /** Streams waiting for flushSoon(). */
  get soonCount(): number {
    return this.soon.length;
  }

  /** Messages each ring may keep now. */
  private ringCap(): number {
    const fit = Math.floor(this.replayBytes / (Math.max(1, this.streams.size) * this.meanBytes));
    return Math.max(Math.min(MIN_RING, this.replay), Math.min(this.replay, fit));
  }

  watch(id: string): void {
    let s = this.streams.get(id);
    if (!s) {
      s = { seq: 0, relayed: undefined, active: false, soon: false, sentAt: -Infinity, pendingSince: 0, watchers: 0, unwatchedAt: 0, pending: { channels: [], times: [], values: [], bools: [] }, ring: [], ringHead: 0, ringSize: 0 };
      this.streams.set(id, s);
    }
    s.watchers++;
  }

  unwatch(id: string, now: number): void {
    const s = this.streams.get(id);
    if (!s || s.watchers === 0) return;
    if (--s.watchers === 0) s.unwatchedAt = now;
  }

  /** Telemetry listener: one Map lookup for unwatched devices. */
  add(device: DeviceState, h: FrameHeader, batch: TelemetryBatch): void {
    const s = this.streams.get(device.id);
    if (!s) return;
    const p = s.pending;
    if (!s.active) this.activate(s, device.id, Date.now());
    for (let i = 0; i < batch.count; i++) {
      p.channels.push(batch.channels[i]!);
      p.times.push(h.timestamp + batch.offsets[i]!);
      p.values.push(batch.values[i]!);
      p.bools.push(batch.types[i] === 4);
    }
  }

  /**
   * Points of a watched device coalesced by another instance (live-relay.ts): they join this flush's
   * message. Ignored when nobody here watches the device.
   */
  addRelayed(id: string, points: DeviceMessage['points'], downsampled: boolean, now: number): void {
    const s = this.streams.get(id);
    if (!s) return;
    if (!s.active) this.activate(s, id, now);
    const r = (s.relayed ??= { points: {}, downsampled: false });
    r.downsampled ||= downsampled;
    for (const ch in points) {
      const into = r.points[ch];
      if (into) into.push(...points[ch]!);
      else r.points[ch] = points[ch]!.slice();
    }
  }

  /**
   * Ends resume across this point: the next message's seq skips one, and the ring is emptied, so a
   * client resuming from before now gets too_old (and fills the gap from history). For a stream
   * whose points come from another instance and may have been missed (not followed, backbone lost).
   */
  breakAt(id: string): void {
    const s = this.streams.get(id);
    if (!s || s.seq === 0) return;
    s.seq++;
    for (let i = 0; i < s.ring.length; i++) {
      this.ringBytes -= s.ring[i]?.length ?? 0;
      s.ring[i] = undefined;
    }
    s.ringSize = 0;
  }

  private activate(s: Stream, id: string, now: number): void {
    s.active = true;
    s.pendingSince = now;
    this.active.push(s);
    this.activeIds.push(id);
    if (now - s.sentAt >= this.quietMs) {
      s.soon = true;
      this.soon.push(s);
      this.soonIds.push(id);
    }
  }

  /** Builds the messages of every active stream (the interval's flush) and empties their pending points. */
  flush(now: number): FlushedMessage[] {
    const out: FlushedMessage[] = [];
    const cap = this.ringCap();
    for (let i = 0; i < this.active.length; i++) if (this.active[i]!.active) out.push(this.build(this.active[i]!, this.activeIds[i]!, now, cap));
    this.active.length = this.activeIds.length = this.soon.length = this.soonIds.length = 0;
    if (now - this.expiredAt >= 1000) {
      this.expiredAt = now;
      this.expire(now);
    }
    return out;
  }

  /**
   * Builds the messages of the streams that were quiet for an interval when their points came (the
   * next-loop-turn flush); the others keep their points for the interval's flush. Touches only those.
   */
  flushSoon(now: number): FlushedMessage[] {
    const out: FlushedMessage[] = [];
    if (this.soon.length === 0) return out;
    const cap = this.ringCap();
    for (let i = 0; i < this.soon.length; i++) if (this.soon[i]!.soon) out.push(this.build(this.soon[i]!, this.soonIds[i]!, now, cap));
    this.soon.length = this.soonIds.length = 0;
    // Their entries in the active list stay behind, inactive: flush() skips them.
    return out;
  }

  private build(s: Stream, id: string, now: number, cap: number): FlushedMessage {
    s.sentAt = now;
    s.soon = false;
    const local = s.pending.channels.length > 0 || s.relayed === undefined ? this.points(s.pending) : undefined;
    const { points, downsampled } = s.relayed === undefined ? local! : merge(local, s.relayed);
    s.relayed = undefined;
    s.active = false;
    s.seq++;
    const json = JSON.stringify({ type: 'device', id, seq: s.seq, points, downsampled } satisfies DeviceMessage);
    this.meanBytes += (json.length - this.meanBytes) / 64;
    this.ringBytes += json.length - (s.ring[s.ringHead]?.length ?? 0);
    s.ring[s.ringHead] = json;
    s.ringHead = (s.ringHead + 1) % this.replay;
    if (s.ringSize < this.replay) s.ringSize++;
    // Over the budget's share: the oldest go (a resume from before them is too_old).
    while (s.ringSize > cap) {
      const oldest = (s.ringHead - s.ringSize + this.replay) % this.replay;
      this.ringBytes -= s.ring[oldest]?.length ?? 0;
      s.ring[oldest] = undefined;
      s.ringSize--;
    }
    s.pending.channels.length = s.pending.times.length = s.pending.values.length = s.pending.bools.length = 0;
    return { id, seq: s.seq, json, waitedMs: now - s.pendingSince, local };
  }

  /** The seq of the stream's last message (0 for none yet). */
  seqOf(id: string): number {
    return this.streams.get(id)?.seq ?? 0;
  }

  /** Messages after `afterSeq`, or undefined when the ring no longer reaches back that far. */
  since(id: string, afterSeq: number): string[] | undefined {
    const s = this.streams.get(id);
    if (!s) return afterSeq === 0 ? [] : undefined;
    if (afterSeq > s.seq) return undefined; // from before a gateway restart
    if (afterSeq === s.seq) return [];
    const oldest = s.seq - s.ringSize + 1;
    if (afterSeq + 1 < oldest) return undefined;
    const out: string[] = [];
    for (let seq = afterSeq + 1; seq <= s.seq; seq++) {
      const idx = (s.ringHead - (s.seq - seq) - 1 + this.replay) % this.replay;
      out.push(s.ring[idx]!);
    }
    return out;
  }

  private points(p: Pending): Pick<DeviceMessage, 'points' | 'downsampled'> {
    const by = new Map<number, number[]>();
    for (let i = 0; i < p.channels.length; i++) {
      const ch = p.channels[i]!;
      let idx = by.get(ch);
      if (!idx) by.set(ch, (idx = []));
      idx.push(i);
    }
    const points: DeviceMessage['points'] = {};
    let downsampled = false;
    for (const [ch, idx] of by) {
      const pts: LivePoint[] = [];
      const val = (i: number): number | boolean => (p.bools[i] ? p.values[i] === 1 : p.values[i]!);
      if (idx.length <= this.maxPointsPerChannel) {
        for (const i of idx) pts.push([p.times[i]!, val(i)]);
      } else {
        // Min and max of the interval, each at its own time, in time order: what a line chart shows.
        downsampled = true;
        let lo = idx[0]!;
        let hi = idx[0]!;
        for (const i of idx) {
          if (p.values[i]! < p.values[lo]!) lo = i;
          if (p.values[i]! > p.values[hi]!) hi = i;
        }
        const [a, b] = p.times[lo]! <= p.times[hi]! ? [lo, hi] : [hi, lo];
        pts.push([p.times[a]!, val(a)]);
        if (b !== a) pts.push([p.times[b]!, val(b)]);
      }
      pts.sort((x, y) => x[0] - y[0]);
      points[String(ch)] = pts;
    }
    return { points, downsampled };
  }

  private expire(now: number): void {
    for (const [id, s] of this.streams) {
      if (s.watchers === 0 && now - s.unwatchedAt > GRACE_MS && s.pending.channels.length === 0 && s.relayed === undefined) {
        for (const m of s.ring) this.ringBytes -= m?.length ?? 0;
        this.streams.delete(id);
      }
    }
  }
}

/** Local and relayed points of one flush in one message, each channel in time order. */
function merge(local: Relayed | undefined, relayed: Relayed): Relayed {
  if (local === undefined) return relayed;
  const points: DeviceMessage['points'] = { ...local.points };
  for (const ch in relayed.points) {
    const a = points[ch];
    points[ch] = a ? [...a, ...relayed.points[ch]!].sort((x, y) => x[0] - y[0]) : relayed.points[ch]!;
  }
  return { points, downsampled: local.downsampled || relayed.downsampled };
}
