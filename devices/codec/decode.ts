import { FrameError } from './errors.js';
import {
  FrameFlag,
  FrameType,
  HEADER_BYTES,
  MAX_TIMESTAMP,
  PROTOCOL_VERSION,
  TAG_HAS_OFFSET,
  TAG_TYPE_MASK,
  TelemetryBatch,
  ValueType,
  VALUE_TYPE_NAMES,
  type CommandStatus,
  type Frame,
  type FrameHeader,
  type Reading,
} from './types.js';

/** Type bytes from here up travel gateway → device (the direction rule). */
const GATEWAY_TYPES_FROM = 0x80;

// ignoreBOM: a leading U+FEFF is part of the string, not stripped (else decode(encode(s)) !== s).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Little-endian reads straight from the bytes. A DataView per call would cost 80 bytes of heap
// per frame on the hot path; floats go through one module-level 8-byte scratch view instead.
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

function u16At(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8);
}
function i32At(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}
function u32At(b: Uint8Array, p: number): number {
  return i32At(b, p) >>> 0;
}
function f32At(b: Uint8Array, p: number): number {
  scratchBytes[0] = b[p]!;
  scratchBytes[1] = b[p + 1]!;
  scratchBytes[2] = b[p + 2]!;
  scratchBytes[3] = b[p + 3]!;
  return scratch.getFloat32(0, true);
}
function f64At(b: Uint8Array, p: number): number {
  for (let i = 0; i < 8; i++) scratchBytes[i] = b[p + i]!;
  return scratch.getFloat64(0, true);
}

/**
 * Reads the 20-byte header into `out` (reused by the caller, so nothing is allocated).
 * Returns a FrameError for a short buffer, a wrong version, an unknown type or a bad timestamp.
 */
export function decodeHeader(bytes: Uint8Array, out: FrameHeader): FrameError | undefined {
  if (bytes.byteLength < HEADER_BYTES) {
    return new FrameError('FRAME_TRUNCATED', `frame is ${bytes.byteLength} bytes, the header alone is ${HEADER_BYTES}`, bytes.byteLength);
  }
  const version = bytes[0]!;
  if (version !== PROTOCOL_VERSION) {
    return new FrameError('FRAME_BAD_VERSION', `version ${version} is not supported (this codec speaks ${PROTOCOL_VERSION})`, 0);
  }
  const type = bytes[1]!;
  if (
    type !== FrameType.Telemetry &&
    type !== FrameType.CommandResult &&
    type !== FrameType.Ack &&
    type !== FrameType.Command &&
    type !== FrameType.Error
  ) {
    return new FrameError('FRAME_UNKNOWN_TYPE', `frame type 0x${type.toString(16).padStart(2, '0')} is unknown`, 1);
  }
  const timestamp = f64At(bytes, 12);
  if (!Number.isInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) {
    return new FrameError('FRAME_BAD_TIMESTAMP', `timestamp ${timestamp} is not whole milliseconds between 1970 and 9999`, 12);
  }
  out.version = version;
  out.type = type;
  out.flags = bytes[2]!;
  out.epoch = u32At(bytes, 4);
  out.seq = u32At(bytes, 8);
  out.timestamp = timestamp;
  return undefined;
}

/**
 * Reads the header of a frame a **device sent** (the gateway's side): decodeHeader's checks with
 * the direction rule between the version and the type (PROTOCOL.md "Order of checks"), so any
 * type byte from 0x80 up is FRAME_WRONG_DIRECTION whatever its other fields or body hold.
 */
export function decodeDeviceHeader(bytes: Uint8Array, out: FrameHeader): FrameError | undefined {
  if (bytes.byteLength >= HEADER_BYTES && bytes[0] === PROTOCOL_VERSION && bytes[1]! >= GATEWAY_TYPES_FROM) {
    return new FrameError('FRAME_WRONG_DIRECTION', `frame type 0x${bytes[1]!.toString(16)} travels gateway → device only`, 1);
  }
  return decodeHeader(bytes, out);
}

/**
 * Decodes the readings of a telemetry frame (header already checked) into `out` without
 * allocating. A count over the batch's capacity is FRAME_COUNT_MISMATCH; callers with their own
 * limit (the gateway's --max-readings) check the count at bytes 20–21 first.
 */
export function decodeTelemetryInto(bytes: Uint8Array, out: TelemetryBatch): FrameError | undefined {
  const len = bytes.byteLength;
  if (len < HEADER_BYTES + 2) {
    return new FrameError('FRAME_TRUNCATED', 'telemetry frame ends before its reading count', len);
  }
  const count = u16At(bytes, HEADER_BYTES);
  let p = HEADER_BYTES + 2;
  for (let i = 0; i < count; i++) {
    // Checked per reading, not up front, so a bad reading earlier in the frame is what gets reported
    // whatever the batch's capacity: the same bytes give the same error on every decode path.
    if (i >= out.capacity) {
      return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings, at most ${out.capacity} fit`, p);
    }
    if (p + 2 > len) {
      return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ends after ${i}`, p);
    }
    const channel = bytes[p]!;
    const tag = bytes[p + 1]!;
    p += 2;
    const type = tag & TAG_TYPE_MASK;
    if ((tag & ~(TAG_TYPE_MASK | TAG_HAS_OFFSET)) !== 0) {
      return new FrameError('FRAME_BAD_VALUE_TYPE', `reading ${i} has reserved tag bits set (0x${tag.toString(16)})`, p - 1);
    }
    let value: number;
    switch (type) {
      case ValueType.F32:
        if (p + 4 > len) return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ends inside reading ${i}`, p);
        value = f32At(bytes, p);
        p += 4;
        break;
      case ValueType.F64:
        if (p + 8 > len) return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ends inside reading ${i}`, p);
        value = f64At(bytes, p);
        p += 8;
        break;
      case ValueType.I32:
        if (p + 4 > len) return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ends inside reading ${i}`, p);
        value = i32At(bytes, p);
        p += 4;
        break;
      case ValueType.Bool: {
        if (p + 1 > len) return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ends inside reading ${i}`, p);
        const b = bytes[p]!;
        if (b > 1) return new FrameError('FRAME_VALUE_OUT_OF_RANGE', `reading ${i} is a bool with byte ${b} (must be 0 or 1)`, p);
        value = b;
        p += 1;
        break;
      }
      default:
        return new FrameError('FRAME_BAD_VALUE_TYPE', `reading ${i} has value type ${type} (known: 1 f32, 2 f64, 3 i32, 4 bool)`, p - 1);
    }
    if (value !== value || value === Infinity || value === -Infinity) {
      return new FrameError('FRAME_VALUE_OUT_OF_RANGE', `reading ${i} is not a finite number`, p);
    }
    let offset = 0;
    if ((tag & TAG_HAS_OFFSET) !== 0) {
      if (p + 4 > len) return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ends inside reading ${i}'s offset`, p);
      offset = i32At(bytes, p);
      p += 4;
    }
    out.channels[i] = channel;
    out.types[i] = type;
    out.values[i] = value;
    out.offsets[i] = offset;
  }
  if (p !== len) {
    return new FrameError('FRAME_COUNT_MISMATCH', `frame declares ${count} readings but ${len - p} bytes follow them`, p);
  }
  out.count = count;
  return undefined;
}

interface Cursor {
  p: number;
}

function readString(bytes: Uint8Array, c: Cursor, lenBytes: 1 | 2, max: number, what: string): string | FrameError {
  const len = bytes.byteLength;
  if (c.p + lenBytes > len) return new FrameError('FRAME_TRUNCATED', `frame ends before the length of its ${what}`, c.p);
  const n = lenBytes === 1 ? bytes[c.p]! : bytes[c.p]! | (bytes[c.p + 1]! << 8);
  c.p += lenBytes;
  if (n > max) return new FrameError('FRAME_BAD_STRING', `${what} is ${n} bytes, at most ${max} allowed`, c.p - lenBytes);
  if (c.p + n > len) return new FrameError('FRAME_TRUNCATED', `frame ends inside its ${what}`, c.p);
  let s: string;
  try {
    s = utf8.decode(bytes.subarray(c.p, c.p + n));
  } catch {
    return new FrameError('FRAME_BAD_STRING', `${what} is not valid UTF-8`, c.p);
  }
  c.p += n;
  return s;
}

function readF64(bytes: Uint8Array, c: Cursor, what: string): number | FrameError {
  if (c.p + 8 > bytes.byteLength) return new FrameError('FRAME_TRUNCATED', `frame ends inside its ${what}`, c.p);
  const v = f64At(bytes, c.p);
  c.p += 8;
  return v;
}

function atEnd(bytes: Uint8Array, c: Cursor): FrameError | undefined {
  if (c.p !== bytes.byteLength) {
    return new FrameError('FRAME_COUNT_MISMATCH', `${bytes.byteLength - c.p} unexpected bytes after the frame body`, c.p);
  }
  return undefined;
}

/**
 * Decodes a whole frame into plain objects. Convenient for the SDK, the dashboard and tests;
 * the gateway's telemetry path uses decodeHeader + decodeTelemetryInto instead. Never throws.
 */
export function decodeFrame(bytes: Uint8Array): Frame | FrameError {
  const h = {} as FrameHeader;
  const err = decodeHeader(bytes, h);
  if (err) return err;
  const c: Cursor = { p: HEADER_BYTES };
  switch (h.type) {
    case FrameType.Telemetry: {
      // Every reading takes at least 3 bytes, so this capacity never cuts a well-formed frame short.
      const batch = new TelemetryBatch(Math.max(1, Math.min(65535, Math.floor((bytes.byteLength - HEADER_BYTES - 2) / 3))));
      const e = decodeTelemetryInto(bytes, batch);
      if (e) return e;
      const readings: Reading[] = new Array(batch.count);
      for (let i = 0; i < batch.count; i++) {
        const type = VALUE_TYPE_NAMES[batch.types[i] as ValueType];
        const raw = batch.values[i]!;
        readings[i] = { channel: batch.channels[i]!, type, value: type === 'bool' ? raw === 1 : raw, offsetMs: batch.offsets[i]! };
      }
      return { ...h, type: FrameType.Telemetry, readings };
    }
    case FrameType.CommandResult: {
      const commandId = readString(bytes, c, 1, 64, 'command id');
      if (typeof commandId !== 'string') return commandId;
      if (c.p + 1 > bytes.byteLength) return new FrameError('FRAME_TRUNCATED', 'frame ends before its result status', c.p);
      const status = bytes[c.p]!;
      if (status > 3) return new FrameError('FRAME_VALUE_OUT_OF_RANGE', `result status ${status} is unknown (0 ok, 1 failed, 2 rejected, 3 received)`, c.p);
      c.p += 1;
      const payload = readString(bytes, c, 2, 65535, 'result payload');
      if (typeof payload !== 'string') return payload;
      return atEnd(bytes, c) ?? { ...h, type: FrameType.CommandResult, commandId, status: status as CommandStatus, payload };
    }
    case FrameType.Ack: {
      if ((h.flags & FrameFlag.AckRange) === 0) return atEnd(bytes, c) ?? { ...h, type: FrameType.Ack };
      if (c.p + 4 > bytes.byteLength) return new FrameError('FRAME_TRUNCATED', 'range ack ends before its first seq', c.p);
      const firstSeq = u32At(bytes, c.p);
      c.p += 4;
      return atEnd(bytes, c) ?? { ...h, type: FrameType.Ack, firstSeq };
    }
    case FrameType.Command: {
      const commandId = readString(bytes, c, 1, 64, 'command id');
      if (typeof commandId !== 'string') return commandId;
      const name = readString(bytes, c, 1, 64, 'command name');
      if (typeof name !== 'string') return name;
      const expiresAt = readF64(bytes, c, 'expiry');
      if (typeof expiresAt !== 'number') return expiresAt;
      if (!Number.isInteger(expiresAt) || expiresAt < 0 || expiresAt > MAX_TIMESTAMP) {
        return new FrameError('FRAME_BAD_TIMESTAMP', `command expiry ${expiresAt} is not whole milliseconds between 1970 and 9999`, c.p - 8);
      }
      const args = readString(bytes, c, 2, 65535, 'command arguments');
      if (typeof args !== 'string') return args;
      return atEnd(bytes, c) ?? { ...h, type: FrameType.Command, commandId, name, expiresAt, args };
    }
    case FrameType.Error: {
      if (c.p + 2 > bytes.byteLength) return new FrameError('FRAME_TRUNCATED', 'frame ends before its error code', c.p);
      const code = bytes[c.p]! | (bytes[c.p + 1]! << 8);
      c.p += 2;
      const message = readString(bytes, c, 2, 65535, 'error text');
      if (typeof message !== 'string') return message;
      return atEnd(bytes, c) ?? { ...h, type: FrameType.Error, code, message };
    }
  }
}
