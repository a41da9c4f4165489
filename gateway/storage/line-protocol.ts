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

export const DEFAULT_MEASUREMENT = 'telemetry';

/** InfluxDB holds times in int64 ns: 1677-09-21T00:12:43.145Z .. 2262-04-11T23:47:16.854Z, in ms. */
export const MIN_TIME_MS = -9223372036854;
export const MAX_TIME_MS = 9223372036854;

const FIELD_PREFIX: readonly string[] = Array.from({ length: 256 }, (_, i) => `c${i}=`);

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

export interface Encoded {
  /** Newline-terminated lines; '' when nothing was encodable. */
  text: string;
  /** Lines (InfluxDB points) in text. */
  points: number;
  /** Points left out because InfluxDB cannot hold their time. */
  invalid: number;
}

/**
 * Builds lines for frames. Keeps scratch arrays so that a frame costs only its strings; one encoder
 * per writer (not reentrant).
 */
export class LineEncoder {
  private keys = new Float64Array(64);
  private readonly stamp = new Uint32Array(256);
  private gen = 0;
  private readonly out: Encoded = { text: '', points: 0, invalid: 0 };

  /** Encodes one frame. The returned object is reused by the next call. */
  encode(prefix: string, frameTime: number, batch: TelemetryBatch): Encoded {
    const out = this.out;
    out.text = '';
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
      this.line(prefix, frameTime + first, batch, 0, n, null);
      return out;
    }
    // Several times in one frame: order readings by (offset, index) in a typed scratch (no comparator,
    // no allocation), then one line per offset.
    if (this.keys.length < n) this.keys = new Float64Array(Math.max(n, this.keys.length * 2));
    const keys = this.keys.subarray(0, n);
    for (let i = 0; i < n; i++) keys[i] = (offsets[i]! + 2147483648) * 65536 + i;
    keys.sort();
    let start = 0;
    while (start < n) {
      const off = Math.floor(keys[start]! / 65536) - 2147483648;
      let end = start + 1;
      while (end < n && Math.floor(keys[end]! / 65536) - 2147483648 === off) end++;
      this.line(prefix, frameTime + off, batch, start, end, keys);
      start = end;
    }
    return out;
  }

  /** One line from readings [from, to) (indices through `order` when given), later readings winning. */
  private line(prefix: string, t: number, batch: TelemetryBatch, from: number, to: number, order: Float64Array | null): void {
    const out = this.out;
    if (!(t >= MIN_TIME_MS && t <= MAX_TIME_MS)) {
      out.invalid++;
      return;
    }
    const stamp = this.stamp;
    const gen = ++this.gen;
    if (gen === 0xffffffff) {
      stamp.fill(0);
      this.gen = 1;
    }
    let fields = '';
    // Backwards, so that the later of two readings of one channel is the one kept.
    for (let k = to - 1; k >= from; k--) {
      const i = order === null ? k : order[k]! % 65536;
      const ch = batch.channels[i]!;
      if (stamp[ch] === this.gen) continue;
      stamp[ch] = this.gen;
      const v = batch.values[i]!;
      if (!Number.isFinite(v)) continue; // the codec refuses these; never write one
      const f = FIELD_PREFIX[ch]! + (v === 0 && 1 / v < 0 ? '-0' : v);
      fields = fields === '' ? f : fields + ',' + f;
    }
    if (fields === '') return;
    out.text += prefix + fields + ' ' + t + '\n';
    out.points++;
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
