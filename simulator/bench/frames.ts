/**
 * The benchmark's telemetry frame: 64 bytes carrying 8 readings (6 f32 + 2 bool: header 20 +
 * count 2 + 6 × 6 + 2 × 3), encoded once with the codec and then copied into large blocks that the
 * load generator patches in place (seq, timestamp, one reading) before each write, so every frame
 * the servers see is valid and new to the gateway's dedupe.
 */
import { encodeTelemetry, HEADER_BYTES, type ReadingInput } from '../../devices/codec/index.js';

export const FRAME_BYTES = 64;
export const READINGS_PER_FRAME = 8;
/** Byte offsets inside a frame (little-endian, see devices/PROTOCOL.md). */
export const SEQ_OFFSET = 8;
export const TIMESTAMP_OFFSET = 12;
/** The f32 value of the first reading (channel 1): header, reading count, channel byte, tag byte. */
export const STAMP_OFFSET = HEADER_BYTES + 2 + 2;

/** Six f32 channels and two bools: what a small environmental sensor sends. */
export function benchReadings(stamp = 0): ReadingInput[] {
  return [
    { channel: 1, type: 'f32', value: stamp },
    { channel: 2, type: 'f32', value: 21.5 },
    { channel: 3, type: 'f32', value: 48.25 },
    { channel: 4, type: 'f32', value: 1013.5 },
    { channel: 5, type: 'f32', value: 3.75 },
    { channel: 6, type: 'f32', value: 412 },
    { channel: 7, type: 'bool', value: true },
    { channel: 8, type: 'bool', value: false },
  ];
}

export function templateFrame(epoch: number, timestamp: number): Buffer {
  const bytes = encodeTelemetry({ epoch, seq: 0, timestamp }, benchReadings());
  if (bytes.byteLength !== FRAME_BYTES) throw new Error(`the bench frame is ${bytes.byteLength} bytes, expected ${FRAME_BYTES}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * WebSocket client frame header for a 64-byte binary message: FIN + opcode 2, MASK bit + length 64,
 * then an all-zero masking key. RFC 6455 requires clients to mask, with a key the server just XORs
 * in; a zero key is legal (unusual: browsers pick a random one) and makes masking a no-op, so the
 * payload can be patched in place without re-masking.
 */
export const WS_FRAME_HEADER = Buffer.from([0x82, 0x80 | FRAME_BYTES, 0, 0, 0, 0]);

/**
 * `count` packets back to back, each `prefix` followed by one frame: the unit one write() sends.
 * `payloadAt[i]` is where frame i starts in `buf`.
 */
export class FrameBlock {
  readonly buf: Buffer;
  readonly payloadAt: Uint32Array;
  /** Bytes per packet (prefix + frame). */
  readonly stride: number;

  constructor(
    prefix: Uint8Array,
    frame: Uint8Array,
    readonly count: number,
  ) {
    const stride = prefix.byteLength + frame.byteLength;
    this.stride = stride;
    this.buf = Buffer.alloc(stride * count);
    this.payloadAt = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const at = i * stride;
      this.buf.set(prefix, at);
      this.buf.set(frame, at + prefix.byteLength);
      this.payloadAt[i] = at + prefix.byteLength;
    }
  }

  /**
   * Gives the first `count` frames seqs firstSeq, firstSeq + 1, … and timestamps baseTime + seq (one
   * ms apart). Returns the next seq.
   */
  stamp(firstSeq: number, baseTime: number, count = this.count): number {
    const b = this.buf;
    let seq = firstSeq;
    for (let i = 0; i < count; i++) {
      const p = this.payloadAt[i]!;
      b.writeUInt32LE(seq >>> 0, p + SEQ_OFFSET);
      b.writeDoubleLE(baseTime + (seq >>> 0), p + TIMESTAMP_OFFSET);
      seq = (seq + 1) >>> 0;
    }
    return seq;
  }
}

/**
 * Latency probes: channel 1 carries a frame id scrambled by an odd multiplier mod 2^24 (exact in an
 * f32), so the values are not ordered in time. The gateway's live stream downsamples to each
 * interval's min and max per channel: with scrambled ids those are random frames of the interval,
 * not its first and last, so the sample is not biased toward the interval's edges.
 */
const ID_BITS = 24;
const ID_MASK = (1 << ID_BITS) - 1;
const SCRAMBLE = 0x9e3779 | 1;
const UNSCRAMBLE = inverseMod2n(SCRAMBLE);

function inverseMod2n(a: number): number {
  // Newton's iteration for the inverse of an odd number modulo 2^32 (each step doubles the correct bits).
  let x = a;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x));
  return x;
}

export function probeValue(id: number): number {
  return Math.imul(id & ID_MASK, SCRAMBLE) & ID_MASK;
}

export function probeId(value: number): number {
  return Math.imul(value & ID_MASK, UNSCRAMBLE) & ID_MASK;
}

export const PROBE_IDS = 1 << ID_BITS;
