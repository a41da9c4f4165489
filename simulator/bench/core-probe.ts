/**
 * A yardstick for the core it runs on: decode a bench frame and JSON.stringify it 20,000 times
 * (allocation, property access, strings: the kind of work the servers do), best of 3, in ms. An
 * integer loop would not do: on a shared virtual machine a core can run plain arithmetic at full
 * speed and this kind of work 1.5× slower, when a neighbour shares its caches.
 */
import { decodeFrame } from '../../devices/codec/index.js';
import { templateFrame } from './frames.js';

const frame = templateFrame(1, Date.now());
const bytes = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
let best = Infinity;
let sink = 0;
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < 20_000; i++) sink += JSON.stringify(decodeFrame(bytes)).length;
  best = Math.min(best, performance.now() - t0);
}
process.stdout.write(`${best.toFixed(2)} ${sink > 0 ? '' : '!'}\n`);
