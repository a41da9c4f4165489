import type { ReadingInput } from '../codec/encode.js';
import type { ValueTypeName } from '../codec/types.js';

/** One reading as an application hands it to DeviceClient.send(). Numbers default to f64, booleans to bool. */
export interface DeviceReading {
  /** 0..255 */
  channel: number;
  value: number | boolean;
  type?: ValueTypeName;
}

/** Largest time the codec accepts: 9999-12-31T23:59:59.999Z. */
const MAX_TIME = 253402300799999;
const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

/**
 * Throws a TypeError or RangeError for a reading the encoder would refuse. send() checks readings up
 * front, so a bad one fails in the caller's stack instead of later in a batch timer.
 * (The same rules as encodeTelemetry in devices/codec/encode.ts.)
 */
export function checkReading(r: DeviceReading): void {
  if (r === null || typeof r !== 'object') throw new TypeError(`a reading must be an object { channel, value, type? }, got ${String(r)}`);
  const { channel, value, type } = r;
  if (!Number.isInteger(channel) || channel < 0 || channel > 255) throw new RangeError(`reading channel must be an integer 0..255, got ${String(channel)}`);
  const t = type ?? (typeof value === 'boolean' ? 'bool' : 'f64');
  switch (t) {
    case 'bool':
      if (typeof value !== 'boolean' && value !== 0 && value !== 1) throw new TypeError(`channel ${channel}: a bool reading needs true/false, got ${String(value)}`);
      return;
    case 'f32':
    case 'f64':
    case 'i32':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new RangeError(`channel ${channel}: value must be a finite number, got ${String(value)}`);
      if (t === 'i32' && (!Number.isInteger(value) || value < I32_MIN || value > I32_MAX)) {
        throw new RangeError(`channel ${channel}: an i32 reading needs an integer in i32 range, got ${value}`);
      }
      return;
    default:
      throw new TypeError(`channel ${channel}: unknown type "${String(t)}" (f32, f64, i32, bool)`);
  }
}

/** Throws a RangeError unless `time` is whole ms since 1970 that the codec can carry. */
export function checkTime(time: number): void {
  if (!Number.isInteger(time) || time < 0 || time > MAX_TIME) throw new RangeError(`reading time must be whole ms since 1970, got ${time}`);
}

/**
 * The readings that will go into the next telemetry frame. The frame's timestamp is the time of
 * its first reading; every other reading carries its offset from it (0 is left out on the wire).
 */
/** Telemetry header and reading count. */
const FRAME_OVERHEAD = 22;
const VALUE_BYTES = { f32: 4, f64: 8, i32: 4, bool: 1 } as const;

export class Batch {
  #readings: ReadingInput[] = [];
  #timestamp = 0;
  #bytes = FRAME_OVERHEAD;

  /** The encoded size of the frame these readings make. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The bytes reading `r` taken at `time` adds to the frame (channel, tag, value, offset when not 0). */
  sizeOf(r: DeviceReading, time: number): number {
    const t = r.type ?? (typeof r.value === 'boolean' ? 'bool' : 'f64');
    const offset = this.#readings.length > 0 && time !== this.#timestamp ? 4 : 0;
    return 2 + VALUE_BYTES[t] + offset;
  }

  get size(): number {
    return this.#readings.length;
  }

  /** Time of the first reading (the frame's header timestamp); meaningless while empty. */
  get timestamp(): number {
    return this.#timestamp;
  }

  /** False when a reading at `time` cannot join: its offset from the first reading does not fit an i32. */
  fits(time: number): boolean {
    if (this.#readings.length === 0) return true;
    const offset = time - this.#timestamp;
    return offset >= I32_MIN && offset <= I32_MAX;
  }

  /** Adds a checked reading taken at `time` (call fits() first). */
  add(r: DeviceReading, time: number): void {
    this.#bytes += this.sizeOf(r, time);
    if (this.#readings.length === 0) this.#timestamp = time;
    const offsetMs = time - this.#timestamp;
    const reading: ReadingInput = { channel: r.channel, value: r.value };
    if (r.type !== undefined) reading.type = r.type;
    if (offsetMs !== 0) reading.offsetMs = offsetMs;
    this.#readings.push(reading);
  }

  /** Empties the batch and returns its readings. */
  take(): ReadingInput[] {
    const readings = this.#readings;
    this.#readings = [];
    this.#bytes = FRAME_OVERHEAD;
    return readings;
  }
}
