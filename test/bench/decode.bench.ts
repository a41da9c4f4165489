/**
 * Decoding one 64-byte telemetry frame of 8 readings (6 f32 + 2 bool), three ways:
 * the gateway's hot path (decodeHeader + decodeTelemetryInto into a reused header and batch),
 * decodeFrame (allocates plain objects), and JSON.parse of the same message as JSON text, the
 * obvious alternative. Each benchmark op decodes FRAMES_PER_OP frames, so tinybench's own cost per
 * op (two clock reads) does not swamp a sub-microsecond decode: frames/s = hz × FRAMES_PER_OP.
 * Run: `npx vitest bench --run --project unit test/bench`.
 *
 * Read the ratios, not the absolute figures: vitest runs the codec through Vite's module runner,
 * where every imported constant the decoder reads (HEADER_BYTES, ValueType.F32, …) is a getter on
 * a namespace object. That makes the binary paths several times slower than the same code
 * compiled by tsc and run by plain Node (measured: ~0.55–1 µs vs ~0.15–0.2 µs per frame for
 * decodeHeader + decodeTelemetryInto), while JSON.parse, being native, is not slowed.
 */
import { bench, describe } from 'vitest';
import { FrameType, TelemetryBatch, decodeFrame, decodeHeader, decodeTelemetryInto, type FrameHeader } from '../../devices/codec/index.js';
import { fromHex, telemetryAsJson, validVector } from '../vectors.js';

const vector = validVector('telemetry-64-bytes-8-readings');
const bytes = fromHex(vector.hex);
if (bytes.byteLength !== 64 || vector.frame.type !== FrameType.Telemetry) throw new Error('the 64-byte vector changed');

const json = telemetryAsJson(vector.frame);
const jsonBytes = new TextEncoder().encode(json);
const utf8 = new TextDecoder();

interface JsonTelemetry {
  seq: number;
  readings: { ch: number; v: number | boolean }[];
}

const FRAMES_PER_OP = 100;
const header = {} as FrameHeader;
const batch = new TelemetryBatch(1024);
let sink = 0;

describe(`decode ${FRAMES_PER_OP} telemetry frames per op (binary ${bytes.byteLength} B, JSON ${jsonBytes.byteLength} B each)`, () => {
  bench('decodeHeader + decodeTelemetryInto (reused header and batch)', () => {
    for (let i = 0; i < FRAMES_PER_OP; i++) {
      if (decodeHeader(bytes, header) || decodeTelemetryInto(bytes, batch)) throw new Error('decode failed');
      sink += header.seq + batch.values[batch.count - 1]!;
    }
  });

  bench('decodeFrame (allocating)', () => {
    for (let i = 0; i < FRAMES_PER_OP; i++) {
      const r = decodeFrame(bytes);
      if (r instanceof Error || r.type !== FrameType.Telemetry) throw new Error('decode failed');
      sink += r.seq + r.readings.length;
    }
  });

  bench('JSON.parse(string)', () => {
    for (let i = 0; i < FRAMES_PER_OP; i++) {
      const m = JSON.parse(json) as JsonTelemetry;
      sink += m.seq + m.readings.length;
    }
  });

  bench('TextDecoder + JSON.parse (JSON arriving as bytes)', () => {
    for (let i = 0; i < FRAMES_PER_OP; i++) {
      const m = JSON.parse(utf8.decode(jsonBytes)) as JsonTelemetry;
      sink += m.seq + m.readings.length;
    }
  });
});

// Keeps `sink` observable so no engine can drop the work.
export function benchSink(): number {
  return sink;
}
