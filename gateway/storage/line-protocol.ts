/**
 * InfluxDB line protocol for one frame's readings, built straight from the reused TelemetryBatch.
 *
 * Schema (see STORAGE.md): measurement `telemetry`, tags `device` and `type` (the device type, left
 * out when unknown), one float field `c<channel>` per channel, time = frame time + the reading's
 * offset, in ms. Readings of one frame with the same time share one line (one InfluxDB point); the
 * same channel twice at one time keeps the later reading, as the memory store does. Every value is a
 * float (a bool is 1 or 0): a channel that is a bool on one device type and a number on another
 * (`c3` on climate and vibration) can then never hit a field type conflict.
 */
import type { TelemetryBatch } from '../../devices/codec/index.js';
import { NumberText, writeInt } from '../number-text.js';

export const DEFAULT_MEASUREMENT = 'telemetry';

/** InfluxDB holds times in int64 ns: 1677-09-21T00:12:43.145Z .. 2262-04-11T23:47:16.854Z, in ms. */
export const MIN_TIME_MS = -9223372036854;
export const MAX_TIME_MS = 9223372036854;

/** Field name of a channel. */
export function fieldName(channel: number): string {
  return `c${channel}`;
}

/** Escapes a measurement name: commas and spaces. */
export function escapeMeasurement(s: string): string {
  return s.replace(/[\n\r]/g, ' ').replace(/\\/g, '_').replace(/[, ]/g, '\\$&');
}

/**
 * Escapes a tag key or value: commas, equals signs and spaces get a backslash. A backslash of its
 * own becomes `_` (InfluxDB 1.x would read it as escaping the next character), a newline a space.
 */
export function escapeTag(s: string): string {
  return s.replace(/[\n\r]/g, ' ').replace(/\\/g, '_').replace(/[,= ]/g, '\\$&');
}

/** `telemetry,device=<id>,type=<type> ` for a device (the part of a line before the fields). */
export function seriesPrefix(measurement: string, device: string, deviceType: string | undefined): string {
  let p = `${escapeMeasurement(measurement)},device=${escapeTag(device)}`;
  if (deviceType) p += `,type=${escapeTag(deviceType)}`;
  return p + ' ';
}

/** A growable byte buffer that lines are written into; take() hands out what it holds and starts over. */
export class LineBuffer {
  buf: Buffer;
  len = 0;
  constructor(private readonly initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  ensure(more: number): void {
    if (this.len + more <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + more));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /**
   * The bytes written so far; the buffer starts empty again. A well-filled buffer is handed over as
   * is (no copy); a small batch is copied out, so that it never pins a mostly empty buffer.
   */
  take(): Buffer {
    const len = this.len;
    this.len = 0;
    if (len < this.buf.length >> 1) {
      const out = Buffer.allocUnsafe(len);
      this.buf.copy(out, 0, 0, len);
      return out;
    }
    const out = this.buf.subarray(0, len);
    this.buf = Buffer.allocUnsafe(Math.max(this.initial, Math.min(len + (len >> 2), 16 * 1024 * 1024)));
    return out;
  }
}

export interface Encoded {
  /** Lines (InfluxDB points) written. */
  points: number;
  /** Points left out because InfluxDB cannot hold their time. */
  invalid: number;
}

const MINUS = 45;

/**
 * Writes frames as line protocol straight into a LineBuffer: no per-reading strings except for
 * fractional values, whose shortest round-trip text (the costly part) is kept in a small
 * direct-mapped cache, as sensors repeat values. One encoder per writer (not reentrant).
 */
export class LineEncoder {
  private keys = new Float64Array(64);
  private readonly stamp = new Uint32Array(256);
  private gen = 0;
  private readonly out: Encoded = { points: 0, invalid: 0 };
  private readonly numbers = new NumberText();

  /** Encodes one frame after `prefix` (seriesPrefix as UTF-8). The returned object is reused by the next call. */
  encode(p: Buffer, frameTime: number, batch: TelemetryBatch, into: LineBuffer): Encoded {
    const out = this.out;
    out.points = 0;
    out.invalid = 0;
    const n = batch.count;
    if (n === 0) return out;
    const offsets = batch.offsets;
    const first = offsets[0]!;
    let same = true;
    for (let i = 1; i < n; i++) {
      if (offsets[i] !== first) {
        same = false;
        break;
      }
    }
    if (same) {
      into.ensure(p.length + n * 40 + 24);
      this.line(p, frameTime + first, batch, 0, n, null, into);
      return out;
    }
    // Several times in one frame: order readings by (offset, index) in a typed scratch (no comparator,
    // no allocation), then one line per offset.
    if (this.keys.length < n) this.keys = new Float64Array(Math.max(n, this.keys.length * 2));
    const keys = this.keys.subarray(0, n);
    for (let i = 0; i < n; i++) keys[i] = (offsets[i]! + 2147483648) * 65536 + i;
    keys.sort();
    into.ensure(n * (p.length + 64));
    let start = 0;
    while (start < n) {
      const off = Math.floor(keys[start]! / 65536) - 2147483648;
      let end = start + 1;
      while (end < n && Math.floor(keys[end]! / 65536) - 2147483648 === off) end++;
      this.line(p, frameTime + off, batch, start, end, keys, into);
      start = end;
    }
    return out;
  }

  /** One line from readings [from, to) (indices through `order` when given), later readings winning. */
  private line(prefix: Buffer, t: number, batch: TelemetryBatch, from: number, to: number, order: Float64Array | null, into: LineBuffer): void {
    if (!(t >= MIN_TIME_MS && t <= MAX_TIME_MS)) {
      this.out.invalid++;
      return;
    }
    const stamp = this.stamp;
    if (++this.gen === 0xffffffff) {
      stamp.fill(0);
      this.gen = 1;
    }
    const gen = this.gen;
    const start = into.len;
    const buf = into.buf;
    let pos = start;
    // A plain loop: Buffer#copy and TypedArray#set cost more than this for a few dozen bytes.
    for (let k = 0, n = prefix.length; k < n; k++) buf[pos++] = prefix[k]!;
    let fields = 0;
    // Backwards, so that the later of two readings of one channel is the one kept.
    for (let k = to - 1; k >= from; k--) {
      const i = order === null ? k : order[k]! % 65536;
      const ch = batch.channels[i]!;
      if (stamp[ch] === gen) continue;
      stamp[ch] = gen;
      const v = batch.values[i]!;
      if (!Number.isFinite(v)) continue; // the codec refuses these; never write one
      if (fields++ > 0) buf[pos++] = 44; // ,
      buf[pos++] = 99; // c
      pos = writeInt(buf, pos, ch);
      buf[pos++] = 61; // =
      if (v === Math.trunc(v) && v < 1e15 && v > -1e15) {
        if (v === 0 && 1 / v < 0) buf[pos++] = MINUS;
        pos = writeInt(buf, pos, v);
      } else {
        const text = this.numbers.text(v); // ASCII: digits, '.', '-', 'e', '+'
        for (let c = 0; c < text.length; c++) buf[pos++] = text.charCodeAt(c);
      }
    }
    if (fields === 0) {
      into.len = start;
      return;
    }
    buf[pos++] = 32; // space
    pos = writeInt(buf, pos, t);
    buf[pos++] = 10; // \n
    into.len = pos;
    this.out.points++;
  }

}

/** Distinct times (points) in a frame: what the memory store counts as points written. */
export function distinctTimes(batch: TelemetryBatch): number {
  const n = batch.count;
  if (n === 0) return 0;
  const o = batch.offsets;
  let same = true;
  for (let i = 1; i < n && same; i++) same = o[i] === o[0];
  if (same) return 1;
  return new Set(o.subarray(0, n)).size;
}

/** Number of lines in line-protocol bytes or text. */
export function countLines(body: string | Buffer): number {
  let n = 0;
  if (typeof body === 'string') {
    for (let i = body.indexOf('\n'); i !== -1; i = body.indexOf('\n', i + 1)) n++;
  } else {
    for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, i + 1)) n++;
  }
  return n;
}

/** Splits newline-terminated lines into two halves of about equal size, each at least one line. */
export function splitLines(body: Buffer): [Buffer, Buffer] | undefined {
  const len = body.length;
  let cut = body.indexOf(10, len >> 1);
  if (cut === -1 || cut >= len - 1) cut = body.lastIndexOf(10, (len >> 1) - 1);
  if (cut < 0 || cut >= len - 1) return undefined;
  return [body.subarray(0, cut + 1), body.subarray(cut + 1)];
}
