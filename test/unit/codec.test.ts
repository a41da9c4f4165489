import { describe, expect, it } from 'vitest';
import {
  CLOSE_CODES,
  ERROR_CODES,
  FrameError,
  FrameType,
  TelemetryBatch,
  VALUE_TYPE_NAMES,
  decodeDeviceHeader,
  decodeFrame,
  decodeHeader,
  decodeTelemetryInto,
  encodeCommand,
  encodeCommandResult,
  encodeError,
  encodeFrame,
  encodeTelemetry,
  shouldReconnect,
  type CommandStatus,
  type Frame,
  type FrameErrorCode,
  type FrameHeader,
  type Reading,
  type ValueType,
} from '../../devices/codec/index.js';
import { fromHex, invalidVectors, toHex, validVector, validVectors } from '../vectors.js';
import { mulberry32 } from '../helpers/random.js';

const FRAME_CODES = new Set(Object.keys(ERROR_CODES).filter((k) => k.startsWith('FRAME_')));
/** Codes that only a receiver's policy produces (direction, size limit); decodeFrame never returns them. */
const POLICY_CODES = new Set<FrameErrorCode>(['FRAME_WRONG_DIRECTION', 'FRAME_TOO_LARGE']);
const FRAME_TYPES = new Set<number>(Object.values(FrameType));

/** The same bytes at an odd offset inside a larger buffer, so DataView offsets are exercised. */
function atOffset(bytes: Uint8Array, offset = 3): Uint8Array {
  const big = new Uint8Array(bytes.byteLength + offset + 5).fill(0xee);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.byteLength);
}

describe('golden vectors', () => {
  it('cover every frame type, value type, the flag and the edges', () => {
    const frames = validVectors.map((v) => v.frame);
    expect(new Set(frames.map((f) => f.type))).toEqual(FRAME_TYPES);
    const readings = frames.flatMap((f) => (f.type === FrameType.Telemetry ? f.readings : []));
    expect(new Set(readings.map((r) => r.type))).toEqual(new Set(Object.values(VALUE_TYPE_NAMES)));
    expect(readings.some((r) => r.offsetMs > 0) && readings.some((r) => r.offsetMs < 0)).toBe(true);
    expect(frames.some((f) => f.flags & 1)).toBe(true);
    expect(frames.some((f) => f.seq === 0xffffffff)).toBe(true);
    expect(frames.some((f) => f.epoch === 0xffffffff)).toBe(true);
    expect(frames.some((f) => f.type === FrameType.Telemetry && f.readings.length === 0)).toBe(true);
    expect(new Set(validVectors.map((v) => v.name)).size).toBe(validVectors.length);
  });

  it('invalid.json has a vector for every code the decoder returns', () => {
    const expected = [...FRAME_CODES].filter((c) => !POLICY_CODES.has(c as FrameErrorCode));
    expect(new Set(invalidVectors.map((v) => v.code))).toEqual(new Set(expected));
    expect(new Set(invalidVectors.map((v) => v.name)).size).toBe(invalidVectors.length);
  });

  it.each(invalidVectors)('invalid from a device: $name → $gatewayCode at a gateway', ({ hex, code, gatewayCode }) => {
    // decodeDeviceHeader is the gateway's header check (direction right after the version); where
    // it passes, the gateway's answer is the decoder's code unless --max-readings (1024) is hit.
    const bytes = fromHex(hex);
    const e = decodeDeviceHeader(bytes, {} as FrameHeader);
    const count = bytes.byteLength >= 22 && bytes[1] === FrameType.Telemetry ? bytes[20]! | (bytes[21]! << 8) : 0;
    expect(e?.code ?? (count > 1024 ? 'TOO_MANY_READINGS' : code)).toBe(gatewayCode);
  });

  describe.each(validVectors)('valid: $name', ({ hex, frame }) => {
    it('decodes to the frame', () => {
      expect(decodeFrame(fromHex(hex))).toEqual(frame);
      expect(decodeFrame(atOffset(fromHex(hex)))).toEqual(frame);
    });
    it('encodes to the bytes', () => {
      expect(toHex(encodeFrame(frame))).toBe(hex);
    });
  });

  it.each(invalidVectors)('invalid: $name → $code', ({ hex, code }) => {
    for (const bytes of [fromHex(hex), atOffset(fromHex(hex))]) {
      let result: Frame | FrameError | undefined;
      expect(() => (result = decodeFrame(bytes))).not.toThrow();
      expect(result).toBeInstanceOf(FrameError);
      const err = result as FrameError;
      expect(err.code).toBe(code);
      expect(err.closeCode).toBe(CLOSE_CODES.BAD_FRAME);
      expect(shouldReconnect(err.closeCode)).toBe(false);
      expect(err.offset).toBeGreaterThanOrEqual(0);
      expect(err.offset).toBeLessThanOrEqual(bytes.byteLength);
    }
  });
});

describe('decodeHeader + decodeTelemetryInto (the gateway hot path)', () => {
  const header = {} as FrameHeader;
  const batch = new TelemetryBatch(64);

  it('agrees with decodeFrame on every telemetry vector, reusing one header and one batch', () => {
    const telemetry = validVectors.filter((v) => v.frame.type === FrameType.Telemetry);
    expect(telemetry.length).toBeGreaterThan(10);
    for (const { name, hex, frame } of telemetry) {
      const bytes = fromHex(hex);
      expect(decodeHeader(bytes, header), name).toBeUndefined();
      expect(decodeTelemetryInto(bytes, batch), name).toBeUndefined();
      const readings: Reading[] = [];
      for (let i = 0; i < batch.count; i++) {
        const type = VALUE_TYPE_NAMES[batch.types[i] as ValueType];
        const raw = batch.values[i]!;
        readings.push({ channel: batch.channels[i]!, type, value: type === 'bool' ? raw === 1 : raw, offsetMs: batch.offsets[i]! });
      }
      expect({ ...header, readings }, name).toEqual(frame);
    }
  });

  it('returns the same error code as decodeFrame for every invalid telemetry vector', () => {
    for (const { name, hex, code } of invalidVectors) {
      const bytes = fromHex(hex);
      let e = decodeHeader(bytes, header);
      if (!e) {
        if (header.type !== FrameType.Telemetry) continue; // the body of another frame type
        e = decodeTelemetryInto(bytes, batch);
      }
      expect(e, name).toBeInstanceOf(FrameError);
      expect(e?.code, name).toBe(code);
    }
  });

  it('a batch with a small capacity refuses a larger count before reading values', () => {
    const bytes = fromHex(validVector('telemetry-64-bytes-8-readings').hex);
    expect(decodeHeader(bytes, header)).toBeUndefined();
    const small = new TelemetryBatch(7);
    const e = decodeTelemetryInto(bytes, small);
    expect(e).toBeInstanceOf(FrameError);
    expect(e?.code).toBe('FRAME_COUNT_MISMATCH');
    expect(small.count).toBe(0);
    const exact = new TelemetryBatch(8);
    expect(decodeTelemetryInto(bytes, exact)).toBeUndefined();
    expect(exact.count).toBe(8);
  });

  it('leaves the header untouched when it returns an error', () => {
    const h = { version: 9, type: FrameType.Ack, flags: 9, epoch: 9, seq: 9, timestamp: 9 } as FrameHeader;
    const before = { ...h };
    expect(decodeHeader(fromHex('02'.repeat(20)), h)?.code).toBe('FRAME_BAD_VERSION');
    expect(h).toEqual(before);
  });
});


describe('decodeFrame on hostile input', () => {
  const SEED = 0x5eed;

  /** decodeFrame must not throw and must return a Frame or a FrameError with a FRAME_* code. */
  function check(bytes: Uint8Array, what: string): void {
    let r: Frame | FrameError;
    try {
      r = decodeFrame(bytes);
    } catch (e) {
      throw new Error(`decodeFrame threw on ${what} (${toHex(bytes)}): ${String(e)}`);
    }
    if (r instanceof FrameError) {
      if (!FRAME_CODES.has(r.code) || POLICY_CODES.has(r.code)) throw new Error(`${what}: unexpected code ${r.code}`);
      return;
    }
    if (!FRAME_TYPES.has(r.type)) throw new Error(`${what}: decoded an unknown type ${r.type}`);
    // Whatever decodes must encode again and decode to the same frame.
    const again = decodeFrame(encodeFrame(r));
    expect(again, what).toEqual(r);
  }

  it(`20,000 random byte strings (seed ${SEED})`, () => {
    const rand = mulberry32(SEED);
    const types = [...FRAME_TYPES];
    const header = fromHex(validVector('ack').hex);
    for (let n = 0; n < 20_000; n++) {
      const bytes = new Uint8Array(Math.floor(rand() * 96));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
      // Three in four get a valid header, so the body decoders see most of the input.
      if (rand() < 0.75) {
        bytes.set(header.subarray(0, Math.min(20, bytes.length)));
        if (bytes.length > 1) bytes[1] = types[Math.floor(rand() * types.length)]!;
        if (bytes.length > 20 && rand() < 0.5) bytes[20] = Math.floor(rand() * 4); // small counts and lengths
        if (bytes.length > 21 && rand() < 0.5) bytes[21] = 0;
      }
      check(bytes, `random string #${n}`);
    }
  });

  it(`every truncation and random bit flips of every valid vector (seed ${SEED})`, () => {
    const rand = mulberry32(SEED + 1);
    for (const { name, hex } of validVectors) {
      const bytes = fromHex(hex);
      for (let len = 0; len < bytes.length; len++) check(bytes.subarray(0, len), `${name} cut to ${len} bytes`);
      for (let n = 0; n < 200; n++) {
        const flipped = bytes.slice();
        const flips = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < flips; k++) {
          const bit = Math.floor(rand() * flipped.length * 8);
          flipped[bit >> 3]! ^= 1 << (bit & 7);
        }
        check(flipped, `${name} with ${flips} bit flip(s) #${n}`);
      }
    }
  });
});

describe('encoder input validation', () => {
  const h = { epoch: 1, seq: 1, timestamp: 1_700_000_000_000 };

  it('rejects a channel outside 0..255', () => {
    expect(() => encodeTelemetry(h, [{ channel: 256, value: 1 }])).toThrow(RangeError);
    expect(() => encodeTelemetry(h, [{ channel: -1, value: 1 }])).toThrow(RangeError);
  });
  it('rejects an i32 reading outside i32 range or not whole', () => {
    expect(() => encodeTelemetry(h, [{ channel: 1, type: 'i32', value: 2 ** 31 }])).toThrow(RangeError);
    expect(() => encodeTelemetry(h, [{ channel: 1, type: 'i32', value: -(2 ** 31) - 1 }])).toThrow(RangeError);
    expect(() => encodeTelemetry(h, [{ channel: 1, type: 'i32', value: 1.5 }])).toThrow(RangeError);
  });
  it('rejects non-finite numbers and an f32 overflow', () => {
    for (const value of [NaN, Infinity, -Infinity]) {
      expect(() => encodeTelemetry(h, [{ channel: 1, type: 'f64', value }])).toThrow(RangeError);
      expect(() => encodeTelemetry(h, [{ channel: 1, type: 'f32', value }])).toThrow(RangeError);
    }
    expect(() => encodeTelemetry(h, [{ channel: 1, type: 'f32', value: 1e39 }])).toThrow(RangeError);
  });
  it('rejects a bool reading that is not true/false/0/1 and an unknown type', () => {
    expect(() => encodeTelemetry(h, [{ channel: 1, type: 'bool', value: 2 }])).toThrow(TypeError);
    expect(() => encodeTelemetry(h, [{ channel: 1, type: 'u8' as 'i32', value: 2 }])).toThrow(TypeError);
  });
  it('rejects an offset outside i32', () => {
    expect(() => encodeTelemetry(h, [{ channel: 1, value: 1, offsetMs: 2 ** 31 }])).toThrow(RangeError);
  });
  it('rejects over-long strings, counted in UTF-8 bytes', () => {
    expect(() => encodeCommand(h, { commandId: 'x'.repeat(65), name: 'n' })).toThrow(RangeError);
    expect(() => encodeCommand(h, { commandId: 'é'.repeat(33), name: 'n' })).toThrow(RangeError); // 66 bytes
    expect(() => encodeCommand(h, { commandId: 'c', name: 'n'.repeat(65) })).toThrow(RangeError);
    expect(() => encodeCommandResult(h, { commandId: 'x'.repeat(65), status: 0 })).toThrow(RangeError);
    expect(() => encodeCommandResult(h, { commandId: 'x'.repeat(64), status: 0 })).not.toThrow();
  });
  it('rejects timestamps and expiries the decoder would refuse', () => {
    for (const timestamp of [-1, 0.5, NaN, 253402300800000]) {
      expect(() => encodeTelemetry({ ...h, timestamp }, [])).toThrow(RangeError);
      expect(() => encodeCommand(h, { commandId: 'c', name: 'n', expiresAt: timestamp })).toThrow(RangeError);
    }
  });
  it('rejects an unknown result status and an error code outside u16', () => {
    expect(() => encodeCommandResult(h, { commandId: 'c', status: 4 as CommandStatus })).toThrow(RangeError);
    expect(() => encodeError(h, { code: 65536, message: '' })).toThrow(RangeError);
  });
});
