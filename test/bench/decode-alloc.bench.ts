/**
 * Bytes allocated per decode of the 64-byte, 8-reading telemetry frame, printed with console.log.
 * Runs with `npx vitest bench --run --project unit test/bench`. A forced gc() is used before each
 * measurement when the worker has one (`NODE_OPTIONS=--expose-gc npx vitest bench ...`); nothing
 * fails without it.
 *
 * Method: 1,000,000 calls in chunks of 1,000, reading V8 heap use plus ArrayBuffer memory
 * before and after each chunk. A chunk during which a garbage collection ran shows a smaller
 * (often negative) delta, so the figure is the median chunk delta per call, minus the same
 * figure for an empty function (the cost of measuring).
 */
import { bench, describe } from 'vitest';
import { FrameType, TelemetryBatch, decodeFrame, decodeHeader, decodeTelemetryInto, type FrameHeader } from '../../devices/codec/index.js';
import { fromHex, telemetryAsJson, validVector } from '../vectors.js';

const CALLS = 1_000_000;
const CHUNK = 1_000;

const vector = validVector('telemetry-64-bytes-8-readings');
if (vector.frame.type !== FrameType.Telemetry) throw new Error('the 64-byte vector changed');
const bytes = fromHex(vector.hex);
const json = telemetryAsJson(vector.frame);
const header = {} as FrameHeader;
const batch = new TelemetryBatch(1024);
let sink = 0;

const gc = (globalThis as { gc?: () => void }).gc;

function heapBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Median bytes allocated per call of `fn`, over CALLS calls. */
function bytesPerCall(fn: () => void): number {
  gc?.();
  const deltas: number[] = [];
  for (let done = 0; done < CALLS; done += CHUNK) {
    const before = heapBytes();
    for (let i = 0; i < CHUNK; i++) fn();
    deltas.push(heapBytes() - before);
  }
  deltas.sort((a, b) => a - b);
  return deltas[deltas.length >> 1]! / CHUNK;
}

const subjects: [string, () => void][] = [
  [
    'decodeHeader + decodeTelemetryInto (reused)',
    () => {
      if (decodeHeader(bytes, header) || decodeTelemetryInto(bytes, batch)) throw new Error('decode failed');
      sink += batch.count;
    },
  ],
  [
    'decodeFrame (allocating)',
    () => {
      const r = decodeFrame(bytes);
      if (r instanceof Error) throw r;
      sink += r.seq;
    },
  ],
  [
    `JSON.parse of the same message (${json.length} B)`,
    () => {
      sink += (JSON.parse(json) as { seq: number }).seq;
    },
  ],
];

let reported = false;

function report(): void {
  if (reported) return;
  reported = true;
  const baseline = bytesPerCall(() => {
    sink++;
  });
  const lines = [`bytes allocated per decode, ${CALLS.toLocaleString('en')} calls each (gc() ${gc ? 'available' : 'unavailable: set NODE_OPTIONS=--expose-gc for steadier figures'}):`];
  for (const [name, fn] of subjects) {
    for (let i = 0; i < 10_000; i++) fn(); // warm up: let the JIT settle before measuring
    lines.push(`  ${name}: ${Math.max(0, bytesPerCall(fn) - baseline).toFixed(1)} B/frame`);
  }
  console.log(lines.join('\n'));
}

describe('allocation per decode', () => {
  // One measured run: the figure is printed, the timing tinybench shows for it is not meaningful.
  bench('measure and print bytes per frame (see console output)', report, { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 });
});

export function allocSink(): number {
  return sink;
}
