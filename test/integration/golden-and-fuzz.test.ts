/**
 * The gateway against the wire format's golden vectors and 10,000 hostile frames from real
 * WebSocket clients. The codec is the oracle for which error each frame must get.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeCodeFor,
  decodeDeviceHeader,
  decodeFrame,
  ERROR_CODES,
  FrameType,
  HEADER_BYTES,
  type ErrorCode,
  type ErrorFrame,
  type FrameHeader,
  type TelemetryFrame,
} from '../../devices/codec/index.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { fromHex, invalidVectors, validVectors } from '../vectors.js';
import { mulberry32 } from '../helpers/random.js';

const MAX_READINGS = 64;
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ ackInterval: 5, maxReadings: MAX_READINGS, maxFrameBytes: 4096 });
});
afterAll(async () => {
  await gw.close();
});

/** What the gateway must answer to `bytes` from a device: undefined = accepted, else the error code. */
function expectedError(bytes: Uint8Array): ErrorCode | undefined {
  if (bytes.byteLength > 4096) return 'FRAME_TOO_LARGE';
  const h = {} as FrameHeader;
  const e = decodeDeviceHeader(bytes, h);
  if (e) return e.code;
  if (h.type === FrameType.Telemetry && bytes.byteLength >= HEADER_BYTES + 2 && (bytes[HEADER_BYTES]! | (bytes[HEADER_BYTES + 1]! << 8)) > MAX_READINGS) {
    return 'TOO_MANY_READINGS';
  }
  const f = decodeFrame(bytes);
  return f instanceof Error ? f.code : undefined;
}

function errorOf(d: RawDevice): ErrorFrame | undefined {
  return d.received.find((f): f is ErrorFrame => f.type === FrameType.Error);
}

describe('golden vectors through a real gateway', () => {
  it('ingests every valid device-to-gateway vector, with the values and times it decodes to', async () => {
    const telemetry = validVectors.filter((v) => v.frame.type === FrameType.Telemetry);
    expect(telemetry.length).toBeGreaterThan(10);
    for (const [i, v] of telemetry.entries()) {
      const id = `golden-${i}`;
      const d = await RawDevice.connect(gw.ws, id, deviceToken(id));
      const f = v.frame as TelemetryFrame;
      d.send(fromHex(v.hex));
      await d.waitAck(f.epoch, f.seq);
      const { body } = await gw.api(`/api/devices/${id}`);
      expect(body.counters, v.name).toMatchObject({ frames: 1, readings: f.readings.length, errors: 0 });
      // Last value per channel: the reading with the latest time wins, as the gateway keeps it.
      const expected: Record<string, { value: number | boolean; time: number }> = {};
      for (const r of f.readings) {
        const time = f.timestamp + r.offsetMs;
        const prev = expected[r.channel];
        if (!prev || time >= prev.time) expected[r.channel] = { value: r.value, time };
      }
      expect(body.last, v.name).toEqual(expected);
      d.close();
    }
  });

  it('answers every invalid vector with its documented error code and close code', async () => {
    for (const [i, v] of invalidVectors.entries()) {
      const id = `invalid-${i}`;
      const d = await RawDevice.connect(gw.ws, id, deviceToken(id));
      const bytes = fromHex(v.hex);
      // The gateway's own rules come first (PROTOCOL.md "Order of checks"): a gateway-to-device
      // frame sent by a device is refused for its direction right after the version, and a count
      // over --max-readings (64 here) as TOO_MANY_READINGS, before the body is read.
      const want = expectedError(bytes)!;
      if (want !== 'TOO_MANY_READINGS') expect(want, v.name).toBe(v.gatewayCode);
      d.send(bytes);
      const closed = await d.closed;
      expect(errorOf(d)?.code, v.name).toBe(ERROR_CODES[want]);
      expect(closed.code, v.name).toBe(closeCodeFor(want));
    }
  });
});


function hostileFrames(n: number, seed: number): Uint8Array[] {
  const rnd = mulberry32(seed);
  const bases = validVectors.filter((v) => v.frame.type < 0x80).map((v) => fromHex(v.hex));
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 3;
    if (kind === 0) {
      const b = new Uint8Array(Math.floor(rnd() * 96));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      if (b.length > 0 && rnd() < 0.5) b[0] = 1; // often get past the version check
      out.push(b);
    } else if (kind === 1) {
      const b = bases[Math.floor(rnd() * bases.length)]!.slice();
      const flips = 1 + Math.floor(rnd() * 3);
      for (let f = 0; f < flips; f++) {
        const bit = Math.floor(rnd() * b.length * 8);
        b[bit >> 3]! ^= 1 << (bit & 7);
      }
      out.push(b);
    } else {
      const b = bases[Math.floor(rnd() * bases.length)]!;
      out.push(b.slice(0, Math.floor(rnd() * b.length)));
    }
  }
  return out;
}

describe('hostile input', () => {
  it('survives 10,000 random, bit-flipped and truncated frames, answering each bad one with its documented error', async () => {
    const frames = hostileFrames(10_000, 0xc0ffee);
    const bad = frames.filter((f) => expectedError(f) !== undefined).length;
    expect(bad).toBeGreaterThan(5000);
    const errorsBefore = gw.gateway.ingest.stats.errors;

    // A well-behaved device streams the whole time; it must lose nothing.
    const bystander = await RawDevice.connect(gw.ws, 'bystander', deviceToken('bystander'));
    let bySeq = 0;
    const byTimer = setInterval(() => bystander.send(decodeFree(bySeq++)), 2);

    const mismatches: string[] = [];
    const workers = 16;
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        const id = `fuzz-${w}`;
        let d: RawDevice | undefined;
        for (let i = w; i < frames.length; i += workers) {
          d ??= await RawDevice.connect(gw.ws, id, deviceToken(id));
          const bytes = frames[i]!;
          const want = expectedError(bytes);
          d.send(bytes);
          if (want === undefined) continue;
          const closed = await Promise.race([d.closed, new Promise<undefined>((r) => setTimeout(r, 5000))]);
          const got = errorOf(d);
          if (!closed || got?.code !== ERROR_CODES[want] || closed.code !== closeCodeFor(want)) {
            mismatches.push(`frame ${i} (${Buffer.from(bytes).toString('hex')}): want ${want}/${closeCodeFor(want)}, got ${got ? got.code : 'no error frame'}/${closed?.code ?? 'still open'}`);
            d.terminate();
          }
          d = undefined;
        }
        d?.close();
      }),
    );
    clearInterval(byTimer);
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(gw.gateway.ingest.stats.errors - errorsBefore).toBe(bad);

    const last = bySeq - 1;
    await bystander.waitAck(77, last);
    const { body } = await gw.api('/api/devices/bystander');
    expect(body.counters).toMatchObject({ frames: bySeq, errors: 0, duplicates: 0, gaps: 0 });
    expect((await fetch(gw.http + '/healthz')).status).toBe(200);
    bystander.close();
  });
});

function decodeFree(seq: number): Uint8Array {
  // Telemetry with one f64 reading, built by hand so this helper does not share the encoder's code.
  const b = new Uint8Array(HEADER_BYTES + 2 + 2 + 8);
  const v = new DataView(b.buffer);
  v.setUint8(0, 1);
  v.setUint8(1, FrameType.Telemetry);
  v.setUint32(4, 77, true);
  v.setUint32(8, seq, true);
  v.setFloat64(12, 1_700_000_000_000 + seq, true);
  v.setUint16(20, 1, true);
  v.setUint8(22, 3);
  v.setUint8(23, 2);
  v.setFloat64(24, seq, true);
  return b;
}

