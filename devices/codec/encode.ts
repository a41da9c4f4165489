import { ERROR_CODES, type ErrorCode } from './errors.js';
import {
  FrameFlag,
  FrameType,
  HEADER_BYTES,
  MAX_ID_BYTES,
  MAX_NAME_BYTES,
  MAX_TIMESTAMP,
  PROTOCOL_VERSION,
  TAG_HAS_OFFSET,
  ValueType,
  type CommandStatus,
  type Frame,
  type ValueTypeName,
} from './types.js';

const utf8 = new TextEncoder();

/** What a caller hands the encoder for one reading. Numbers default to f64, booleans to bool. */
export interface ReadingInput {
  channel: number;
  value: number | boolean;
  type?: ValueTypeName;
  offsetMs?: number;
}

export interface HeaderInput {
  epoch?: number;
  seq?: number;
  timestamp: number;
  flags?: number;
}

const TYPE_CODE: Record<ValueTypeName, ValueType> = { f32: ValueType.F32, f64: ValueType.F64, i32: ValueType.I32, bool: ValueType.Bool };
const VALUE_BYTES: Record<ValueType, number> = { 1: 4, 2: 8, 3: 4, 4: 1 };

/** Writes the 20-byte header at the start of `view`. Exported so hot paths can fill reused buffers. */
export function writeHeader(view: DataView, type: FrameType, h: HeaderInput): void {
  const { epoch = 0, seq = 0, timestamp, flags = 0 } = h;
  if (!Number.isInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) throw new RangeError(`timestamp must be whole ms between 1970 and 9999, got ${timestamp}`);
  view.setUint8(0, PROTOCOL_VERSION);
  view.setUint8(1, type);
  view.setUint8(2, flags & 0xff);
  view.setUint8(3, 0);
  view.setUint32(4, epoch >>> 0, true);
  view.setUint32(8, seq >>> 0, true);
  view.setFloat64(12, timestamp, true);
}

function typeOf(r: ReadingInput): ValueType {
  if (r.type !== undefined) {
    const t = TYPE_CODE[r.type];
    if (t === undefined) throw new TypeError(`reading on channel ${r.channel}: unknown type "${String(r.type)}" (f32, f64, i32, bool)`);
    return t;
  }
  return typeof r.value === 'boolean' ? ValueType.Bool : ValueType.F64;
}

/** Bytes a telemetry frame with these readings takes. */
export function telemetrySize(readings: readonly ReadingInput[]): number {
  let n = HEADER_BYTES + 2;
  for (const r of readings) n += 2 + VALUE_BYTES[typeOf(r)] + (r.offsetMs ? 4 : 0);
  return n;
}

export function encodeTelemetry(h: HeaderInput, readings: readonly ReadingInput[]): Uint8Array {
  if (readings.length > 65535) throw new RangeError(`a frame carries at most 65535 readings, got ${readings.length}`);
  const bytes = new Uint8Array(telemetrySize(readings));
  const view = new DataView(bytes.buffer);
  writeHeader(view, FrameType.Telemetry, h);
  view.setUint16(HEADER_BYTES, readings.length, true);
  let p = HEADER_BYTES + 2;
  for (const r of readings) {
    if (!Number.isInteger(r.channel) || r.channel < 0 || r.channel > 255) throw new RangeError(`channel must be 0..255, got ${r.channel}`);
    const type = typeOf(r);
    const offset = r.offsetMs ?? 0;
    if (!Number.isInteger(offset) || offset < -0x80000000 || offset > 0x7fffffff) throw new RangeError(`offsetMs must be an i32, got ${offset}`);
    bytes[p] = r.channel;
    bytes[p + 1] = type | (offset !== 0 ? TAG_HAS_OFFSET : 0);
    p += 2;
    const v = r.value;
    if (type === ValueType.Bool) {
      if (typeof v !== 'boolean' && v !== 0 && v !== 1) throw new TypeError(`channel ${r.channel}: a bool reading needs true/false, got ${String(v)}`);
      bytes[p++] = v === true || v === 1 ? 1 : 0;
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`channel ${r.channel}: value must be a finite number, got ${String(v)}`);
      if (type === ValueType.F32) {
        if (!Number.isFinite(Math.fround(v))) throw new RangeError(`channel ${r.channel}: ${v} overflows an f32`);
        view.setFloat32(p, v, true);
        p += 4;
      } else if (type === ValueType.F64) {
        view.setFloat64(p, v, true);
        p += 8;
      } else {
        if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`channel ${r.channel}: an i32 reading needs an integer in i32 range, got ${v}`);
        view.setInt32(p, v, true);
        p += 4;
      }
    }
    if (offset !== 0) {
      view.setInt32(p, offset, true);
      p += 4;
    }
  }
  return bytes;
}

function stringBytes(s: string, max: number, what: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.byteLength > max) throw new RangeError(`${what} is ${b.byteLength} bytes in UTF-8, at most ${max} allowed`);
  return b;
}

/** Lays out header + body parts; each part is a byte array or [kind, value] for a number. */
type Part = Uint8Array | ['u8' | 'u16' | 'u32' | 'f64', number];
const PART_BYTES = { u8: 1, u16: 2, u32: 4, f64: 8 } as const;

function assemble(type: FrameType, h: HeaderInput, parts: Part[]): Uint8Array {
  let n = HEADER_BYTES;
  for (const part of parts) n += part instanceof Uint8Array ? part.byteLength : PART_BYTES[part[0]];
  const bytes = new Uint8Array(n);
  const view = new DataView(bytes.buffer);
  writeHeader(view, type, h);
  let p = HEADER_BYTES;
  for (const part of parts) {
    if (part instanceof Uint8Array) {
      bytes.set(part, p);
      p += part.byteLength;
      continue;
    }
    const [kind, value] = part;
    if (kind === 'u8') view.setUint8(p, value);
    else if (kind === 'u16') view.setUint16(p, value, true);
    else if (kind === 'u32') view.setUint32(p, value, true);
    else view.setFloat64(p, value, true);
    p += PART_BYTES[kind];
  }
  return bytes;
}

function withLength(b: Uint8Array, lenKind: 'u8' | 'u16'): [['u8' | 'u16', number], Uint8Array] {
  return [[lenKind, b.byteLength], b];
}

export function encodeCommandResult(h: HeaderInput, r: { commandId: string; status: CommandStatus; payload?: string }): Uint8Array {
  if (r.status !== 0 && r.status !== 1 && r.status !== 2 && r.status !== 3) {
    throw new RangeError(`status must be 0 (ok), 1 (failed), 2 (rejected) or 3 (received), got ${String(r.status)}`);
  }
  const id = stringBytes(r.commandId, MAX_ID_BYTES, 'command id');
  const payload = stringBytes(r.payload ?? '', 65535, 'result payload');
  return assemble(FrameType.CommandResult, h, [...withLength(id, 'u8'), ['u8', r.status], ...withLength(payload, 'u16')]);
}

/** A cumulative ack of everything up to h.seq; with `firstSeq`, a range ack of exactly firstSeq..h.seq. */
export function encodeAck(h: HeaderInput, firstSeq?: number): Uint8Array {
  if (firstSeq === undefined) return assemble(FrameType.Ack, h, []);
  return assemble(FrameType.Ack, { ...h, flags: (h.flags ?? 0) | FrameFlag.AckRange }, [['u32', firstSeq >>> 0]]);
}

export function encodeCommand(h: HeaderInput, c: { commandId: string; name: string; expiresAt?: number; args?: string }): Uint8Array {
  const id = stringBytes(c.commandId, MAX_ID_BYTES, 'command id');
  const name = stringBytes(c.name, MAX_NAME_BYTES, 'command name');
  const args = stringBytes(c.args ?? '', 65535, 'command arguments');
  const expiresAt = c.expiresAt ?? 0;
  if (!Number.isInteger(expiresAt) || expiresAt < 0 || expiresAt > MAX_TIMESTAMP) throw new RangeError(`expiresAt must be whole ms between 1970 and 9999 or 0, got ${expiresAt}`);
  return assemble(FrameType.Command, h, [...withLength(id, 'u8'), ...withLength(name, 'u8'), ['f64', expiresAt], ...withLength(args, 'u16')]);
}

export function encodeError(h: HeaderInput, e: { code: ErrorCode | number; message: string }): Uint8Array {
  const code = typeof e.code === 'number' ? e.code : ERROR_CODES[e.code];
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new RangeError(`error code must be a u16, got ${String(e.code)}`);
  const message = stringBytes(e.message, 65535, 'error text');
  return assemble(FrameType.Error, h, [['u16', code], ...withLength(message, 'u16')]);
}

/** Encodes any decoded frame back to bytes (the inverse of decodeFrame). */
export function encodeFrame(f: Frame): Uint8Array {
  switch (f.type) {
    case FrameType.Telemetry:
      return encodeTelemetry(f, f.readings);
    case FrameType.CommandResult:
      return encodeCommandResult(f, f);
    case FrameType.Ack:
      return encodeAck(f, (f.flags & FrameFlag.AckRange) !== 0 ? f.firstSeq : undefined);
    case FrameType.Command:
      return encodeCommand(f, f);
    case FrameType.Error:
      return encodeError(f, f);
  }
}
