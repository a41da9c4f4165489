/** The pure parts of `npm run bench` (simulator/bench): the bytes it sends and how it reads answers. */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeAck, FrameType, type TelemetryFrame } from '../../devices/codec/index.js';
import { FRAME_BYTES, FrameBlock, probeId, probeValue, PROBE_IDS, templateFrame, WS_FRAME_HEADER } from '../../simulator/bench/frames.js';
import { parseCounterFile } from '../../simulator/bench/hot-counter.js';
import { AckLedger } from '../../simulator/bench/load/acks.js';
import { LatencyRecorder, quantile } from '../../simulator/bench/load/latency.js';
import { MQTT_TYPE, MqttPacketCounter, PublishBlock } from '../../simulator/bench/mqtt-wire.js';
import { OPCODE, openWebSocket, ServerFrameReader } from '../../simulator/bench/ws-wire.js';
import { ackedBetween, ackRates, TimelineLedger } from '../../simulator/bench/scale/ack-timeline.js';
import { cpuPerMillion, fleetSlices, keptUp, maxWorkers, median, roundRatios, saturationWorkerCounts } from '../../simulator/bench/scale/figures.js';
import { FIXED_RATES, type ScaleRun } from '../../simulator/bench/scale/measure.js';

const FIXED_RATE: number = FIXED_RATES[0];
import { scaleRows } from '../../simulator/bench/scale/rows.js';
import { fixedId, saturationId, scaleSteps } from '../../simulator/bench/scale/steps.js';
import type { SystemSpec } from '../../simulator/bench/scale/systems.js';
import type { LatencyResult } from '../../simulator/bench/measure/latency.js';
import { BIG_FLEET_DEVICES, BIG_FLEET_RATE, bigFleetId, buildFleetRows, fleetId, FLEET_WINDOW_MS } from '../../simulator/bench/rows-fleet.js';
import { sourceAddress } from '../../simulator/bench/load/source-address.js';

function serverFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : n < 65536 ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x80 | opcode, 127]), Buffer.from(new BigUint64Array([BigInt(n)]).buffer).reverse()]);
  return Buffer.concat([head, payload]);
}

describe('bench frames', () => {
  it('is 64 bytes of 8 readings: 6 f32 and 2 bool', () => {
    const f = templateFrame(7, 1_700_000_000_000);
    expect(f.length).toBe(FRAME_BYTES);
    const d = decodeFrame(f) as TelemetryFrame;
    expect(d.type).toBe(FrameType.Telemetry);
    expect(d.readings.map((r) => r.type)).toEqual(['f32', 'f32', 'f32', 'f32', 'f32', 'f32', 'bool', 'bool']);
  });

  it('blocks are zero-masked WebSocket frames with fresh seqs after each stamp', () => {
    const block = new FrameBlock(WS_FRAME_HEADER, templateFrame(9, 0), 4);
    const next = block.stamp(100, 1_700_000_000_000);
    expect(next).toBe(104);
    for (let i = 0; i < 4; i++) {
      const at = block.payloadAt[i]!;
      expect([...block.buf.subarray(at - 6, at)]).toEqual([0x82, 0x80 | 64, 0, 0, 0, 0]);
      const d = decodeFrame(block.buf.subarray(at, at + FRAME_BYTES)) as TelemetryFrame;
      expect(d.epoch).toBe(9);
      expect(d.seq).toBe(100 + i);
      expect(d.timestamp).toBe(1_700_000_000_000 + 100 + i);
    }
  });

  it('probe ids scramble into exact f32 values and back', () => {
    for (const id of [0, 1, 2, 12345, 999_999, PROBE_IDS - 1]) {
      const v = probeValue(id);
      expect(v).toBeLessThan(PROBE_IDS);
      expect(Math.fround(v)).toBe(v);
      expect(probeId(v)).toBe(id);
    }
    expect(probeValue(1)).not.toBe(probeValue(0) + 1);
  });
});

describe('ServerFrameReader', () => {
  it('reads frames split anywhere, handing over only small payloads', () => {
    const small = Buffer.from('ack!');
    const big = Buffer.alloc(70_000, 7);
    const mid = Buffer.alloc(300, 1);
    const stream = Buffer.concat([serverFrame(OPCODE.binary, small), serverFrame(OPCODE.text, big), serverFrame(OPCODE.ping, Buffer.from('p')), serverFrame(OPCODE.binary, mid)]);
    for (const step of [1, 3, 64, 1000, stream.length]) {
      const got: [number, number][] = [];
      const r = new ServerFrameReader(64, (op, p) => got.push([op, p.length]));
      for (let i = 0; i < stream.length; i += step) r.feed(stream.subarray(i, i + step));
      expect(r.messages).toBe(3);
      expect(r.bytes).toBe(stream.length);
      expect(got).toEqual([
        [OPCODE.binary, 4],
        [OPCODE.ping, 1],
      ]);
    }
  });

  it('hands over everything with keepUpTo Infinity', () => {
    const payload = Buffer.from('{"type":"device"}');
    const got: string[] = [];
    const r = new ServerFrameReader(Infinity, (_op, p) => got.push(p.toString()));
    r.feed(Buffer.concat([serverFrame(OPCODE.text, payload), serverFrame(OPCODE.text, payload)]));
    expect(got).toEqual([payload.toString(), payload.toString()]);
  });
});

describe('MQTT blocks', () => {
  it('are PUBLISH packets mqtt-packet parses, with fresh packet ids and frames', () => {
    const block = new PublishBlock('devices/bench-00001/telemetry', 1, templateFrame(3, 0), 3);
    block.stamp(10, 0);
    block.stampIds(65535);
    const parser = mqttPacket.parser();
    const got: { topic: string; messageId?: number; payload: Buffer }[] = [];
    parser.on('packet', (p) => got.push(p as unknown as (typeof got)[number]));
    parser.parse(block.buf);
    expect(got.map((p) => p.topic)).toEqual(Array(3).fill('devices/bench-00001/telemetry'));
    expect(got.map((p) => p.messageId)).toEqual([65535, 1, 2]);
    expect(got.map((p) => (decodeFrame(p.payload) as TelemetryFrame).seq)).toEqual([10, 11, 12]);

    const counter = new MqttPacketCounter();
    for (let i = 0; i < block.buf.length; i += 5) counter.feed(block.buf.subarray(i, i + 5));
    expect(counter.byType[MQTT_TYPE.publish]).toBe(3);
  });

  it('hands over the payload of small PUBLISH packets (the gateway acks over MQTT)', () => {
    const ack = Buffer.from(encodeAck({ epoch: 5, seq: 77, timestamp: 1234 }));
    const stream = Buffer.concat([
      mqttPacket.generate({ cmd: 'publish', topic: 'devices/bench-00001/commands', payload: ack, qos: 0, retain: false, dup: false }),
      mqttPacket.generate({ cmd: 'puback', messageId: 9 }),
      mqttPacket.generate({ cmd: 'publish', topic: 'devices/bench-00001/commands', payload: ack, qos: 1, messageId: 3, retain: false, dup: false }),
    ]);
    const got: Buffer[] = [];
    const counter = new MqttPacketCounter((p) => got.push(Buffer.from(p)));
    for (let i = 0; i < stream.length; i += 3) counter.feed(stream.subarray(i, i + 3));
    expect(got).toEqual([ack, ack]);
    expect(counter.byType[MQTT_TYPE.puback]).toBe(1);
  });
});

describe('AckLedger', () => {
  it('counts newly acked frames by the gateway flush time, leaving out later flushes', () => {
    const ledger = new AckLedger();
    const ack = (seq: number, t: number) => Buffer.from(encodeAck({ epoch: 1, seq, timestamp: t }));
    let a = 0;
    let b = 0;
    a = ledger.onMessage(ack(100, 1000), a)!;
    b = ledger.onMessage(ack(50, 1000), b)!;
    a = ledger.onMessage(ack(300, 2000), a)!;
    expect(ledger.countAt(1500)).toEqual({ t: 1000, frames: 150 });
    expect(ledger.countAt(2000)).toEqual({ t: 2000, frames: 350 });
    expect(ledger.total).toBe(350);
    expect(ledger.onMessage(Buffer.from('not an ack, but 20 bytes'), 0)).toBeUndefined();
  });
});

describe('small helpers', () => {
  it('quantile is nearest-rank', () => {
    const s = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(s, 0.5)).toBe(50);
    expect(quantile(s, 0.99)).toBe(99);
    expect(quantile(s, 0.999)).toBe(100);
    expect(quantile(new Float64Array(0), 0.5)).toBeNaN();
  });

  it('reads a counter file', () => {
    expect(parseCounterFile('1700000000000 42 336'.padEnd(64) + '\n')).toEqual({ t: 1_700_000_000_000, frames: 42, readings: 336 });
    expect(() => parseCounterFile('')).toThrow(/unreadable/);
  });
});

describe('scaling section: figures', () => {
  it('tries up to cores − 1 workers, at least 2: every count to 8, then powers of two, then the most', () => {
    expect([1, 2, 3, 4, 16].map(maxWorkers)).toEqual([2, 2, 2, 3, 15]);
    expect(saturationWorkerCounts(2)).toEqual([1, 2]);
    expect(saturationWorkerCounts(4)).toEqual([1, 2, 3]);
    expect(saturationWorkerCounts(16)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 15]);
    expect(saturationWorkerCounts(17)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 16]);
    expect(saturationWorkerCounts(64)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 63]);
  });

  it('splits the fleet into contiguous, near-even slices covering every device once', () => {
    expect(fleetSlices(1000, 3)).toEqual([
      { first: 0, count: 334 },
      { first: 334, count: 333 },
      { first: 667, count: 333 },
    ]);
    expect(fleetSlices(1000, 1)).toEqual([{ first: 0, count: 1000 }]);
    expect(() => fleetSlices(10, 0)).toThrow(RangeError);
  });

  it('CPU-seconds per million frames, medians, and per-round ratios paired by round', () => {
    expect(cpuPerMillion(0.46, 10_000)).toBeCloseTo(46, 9);
    expect(cpuPerMillion(0.5, 0)).toBeNaN();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
    // Round 2 of `a` is missing: only rounds 1 and 3 pair up.
    const r = roundRatios(
      new Map([
        [3, 30],
        [1, 20],
      ]),
      new Map([
        [1, 10],
        [2, 20],
        [3, 15],
      ]),
    );
    expect(r.rounds).toEqual([2, 2]);
    expect(r.x).toBe(2);
    expect(keptUp(9_100, 10_000)).toBe(true);
    expect(keptUp(8_900, 10_000)).toBe(false);
  });

  it('counts acked frames per window from the ack timeline, each ack once', () => {
    const ledger = new TimelineLedger();
    const ack = (seq: number, t: number) => Buffer.from(encodeAck({ epoch: 1, seq, timestamp: t }));
    let a = 0;
    let b = 0;
    a = ledger.onMessage(ack(100, 1000), a)!;
    b = ledger.onMessage(ack(40, 1000), b)!;
    a = ledger.onMessage(ack(100, 1500), a)!; // nothing new: no frames at 1500
    a = ledger.onMessage(ack(250, 2000), a)!;
    b = ledger.onMessage(ack(90, 2500), b)!;
    expect(ledger.timeline()).toEqual([
      [1000, 140],
      [2000, 150],
      [2500, 50],
    ]);
    expect(ledger.total).toBe(340);
    const t = ledger.timeline();
    expect(ackedBetween(t, 999, 2000)).toBe(290);
    expect(ackedBetween(t, 1000, 2500)).toBe(200);
    expect(ackRates(t, [0, 1000, 3000])).toEqual([140, 100]);
  });
});

describe('scaling section: steps and rows', () => {
  const keys = { fleetKey: 'k', operatorToken: 't' };

  it('interleaves the fixed-load rounds at each load, then one saturation run per worker count', () => {
    expect(scaleSteps(keys, 2).map((s) => s.id)).toEqual([
      ...Array.from({ length: 3 }, () => ['scale-cpu-10k-workers-1', 'scale-cpu-10k-workers-2', 'scale-cpu-10k-cluster-3']).flat(),
      ...Array.from({ length: 3 }, () => ['scale-cpu-30k-workers-1', 'scale-cpu-30k-workers-2', 'scale-cpu-30k-cluster-3']).flat(),
      'scale-saturation-workers-1',
      'scale-saturation-workers-2',
    ]);
    expect(new Set(scaleSteps(keys, 16).map((s) => s.id)).has('scale-cpu-30k-workers-15')).toBe(true);
  });

  const run = (system: SystemSpec, round: number, cores: number, rate = FIXED_RATE, o: Partial<ScaleRun> = {}): ScaleRun => ({
    kind: 'scale',
    test: 'fixed',
    system,
    round,
    rate,
    offered: rate,
    gatewayCpu: cores,
    processes: [{ name: 'gateway', cores, wakeupsPerSec: 1000 }],
    loadCpu: 0.3,
    otherCpu: 0,
    cpuPerMillion: cpuPerMillion(cores, rate),
    viewerBytesPerSec: 0,
    fleetViewMessagesPerSec: 10,
    devicePageDeviceMessagesPerSec: 10,
    closed: 0,
    connectMs: 300,
    ...o,
  });
  const w1: SystemSpec = { kind: 'workers', workers: 1 };
  const w2: SystemSpec = { kind: 'workers', workers: 2 };
  const c3: SystemSpec = { kind: 'cluster', instances: 3 };

  it('compares CPU per frame with --workers 1 round by round against the 1.15× targets', () => {
    const results = new Map<string, ScaleRun[]>([
      [fixedId(w1, FIXED_RATE), [run(w1, 1, 0.3), run(w1, 2, 0.5), run(w1, 3, 0.4)]],
      // Per round 1.10×, 1.10×, 1.20×: median 1.10 ≤ 1.15 (the ratio of the medians, 48/40, would be 1.20).
      [fixedId(w2, FIXED_RATE), [run(w2, 1, 0.33), run(w2, 2, 0.55), run(w2, 3, 0.48)]],
      [fixedId(c3, FIXED_RATE), [run(c3, 1, 0.8, FIXED_RATE, { brokerCpu: 0.1 }), run(c3, 2, 1.0, FIXED_RATE, { brokerCpu: 0.1 }), run(c3, 3, 0.8, 8_000, { brokerCpu: 0.1, offered: 10_000 })]],
    ]);
    const rows = scaleRows(results, new Map(), 2);
    const get = (s: string) => rows.find((r) => r.measurement.endsWith(s) && !r.measurement.includes('30.0k'))!;
    // The second load's rows are there, not measured.
    expect(rows.find((r) => r.measurement === 'Scale-out: gateway CPU per frame at 30.0k frames/s, `--workers 2`')).toMatchObject({ missing: 'not measured', target: '≤ 1.15× `--workers 1`' });
    expect(get('`--workers 1`').met).toBeUndefined();
    expect(get('`--workers 2`')).toMatchObject({ target: '≤ 1.15× `--workers 1`', met: 'yes' });
    expect(get('`--workers 2`').ratio).toBe('1.10× `--workers 1` (rounds: 1.10, 1.10, 1.20)');
    const cluster = get('cluster of 3 instances on one Mosquitto');
    expect(cluster.met).toBe('no');
    expect(cluster.ratio).toBe('2.50× `--workers 1` (rounds: 2.67, 2.00, 2.50); with Mosquitto 2.81×');
    expect(cluster.result).toMatch(/the gateway did not keep up\*\* in round 3 \(acked 8\.00k of 10\.0k/);
    expect(get('saturation, `--workers 1`').missing).toBe('not measured');
  });

  it('asks near-linear saturation growth only of a machine with a core per worker and one for the generator', () => {
    const sat = (w: number, rate: number): ScaleRun => ({ ...run({ kind: 'workers', workers: w }, 1, w, rate), test: 'saturation' });
    const results = new Map<string, ScaleRun[]>([
      [saturationId(1), [sat(1, 100_000)]],
      [saturationId(2), [sat(2, 150_000)]],
      [saturationId(3), [sat(3, 180_000)]],
    ]);
    const on4 = scaleRows(results, new Map(), 4);
    expect(on4.find((r) => r.measurement.endsWith('`--workers 2`') && r.measurement.includes('saturation'))).toMatchObject({ ratio: '1.50× `--workers 1` (0.75 per worker)', target: '≥ 0.7 × 2 × `--workers 1`', met: 'yes' });
    expect(on4.find((r) => r.measurement.endsWith('`--workers 3`') && r.measurement.includes('saturation'))).toMatchObject({ met: 'no' });
    const on2 = scaleRows(results, new Map(), 2);
    const two = on2.find((r) => r.measurement === 'Scale-out: saturation, `--workers 2`')!;
    expect(two.met).toBeUndefined();
    expect(two.target).toMatch(/needs 3 cores/);
  });
});

describe('bench latency recorder', () => {
  it('counts a probe once, at its first arrival (a reading can come in a device message and in a fleet delta)', () => {
    const r = new LatencyRecorder();
    r.windowStart = 0;
    r.sent(5, 10);
    r.received(probeValue(5), 12); // 2 ms
    r.received(probeValue(5), 50); // the same reading again, later: not a sample
    r.received(probeValue(6), 60); // never sent: unknown
    const s = r.summary();
    expect(s.samples).toBe(1);
    expect(s.maxUs).toBe(2000);
    expect(r.unknown).toBe(1);
  });
});

describe('headline saturation row', () => {
  const paced = (rate: number, took: number, p99Us: number): LatencyResult => ({
    samples: 1000, p50Us: 500, p99Us, p999Us: p99Us, maxUs: p99Us,
    ingestRate: took, readingsRate: took * 8, sentInWindow: rate * (FLEET_WINDOW_MS / 1000), lagTicks: 0, unknown: 0,
    serverCpu: took / 60_000, loadCpu: 0.5, otherCpu: 0, closed: 0,
  });
  const saturation = (results: Map<string, LatencyResult>) => buildFleetRows(results, new Map(), 'n/a').find((r) => r.measurement.startsWith('Saturation'))!;

  it('takes the highest rate sustained below the first one not sustained, and compares it with ws', () => {
    const results = new Map<string, LatencyResult>([
      [fleetId('gateway', 10_000), paced(10_000, 10_000, 2_000)],
      [fleetId('gateway', 30_000), paced(30_000, 30_000, 9_000)],
      [fleetId('gateway', 40_000), paced(40_000, 40_000, 30_000)],
      [fleetId('gateway', 50_000), paced(50_000, 50_000, 200_000)],
      [fleetId('gateway', 60_000), paced(60_000, 52_000, 900_000)],
      // A pass above the first failure is luck, not a higher saturation.
      [fleetId('gateway', 70_000), paced(70_000, 70_000, 100_000)],
      [fleetId('ws', 10_000), paced(10_000, 10_000, 2_000)],
      [fleetId('ws', 30_000), paced(30_000, 30_000, 50_000)],
      [fleetId('ws', 40_000), paced(40_000, 40_000, 400_000)],
      [fleetId('mosquitto', 50_000), paced(50_000, 50_000, 30_000)],
    ]);
    const row = saturation(results);
    expect(row.result).toMatch(/^gateway 50\.0k, ws 30\.0k frames\/s/);
    expect(row.ratio).toBe('1.67× ws');
    expect(row.met).toBe('no');
  });

  it('says at least when the gateway kept up with the top of the sweep', () => {
    const results = new Map<string, LatencyResult>();
    for (const rate of [10_000, 30_000, 40_000, 50_000, 60_000, 70_000]) results.set(fleetId('gateway', rate), paced(rate, rate, 5_000));
    results.set(fleetId('ws', 10_000), paced(10_000, 10_000, 2_000));
    results.set(fleetId('ws', 30_000), paced(30_000, 25_000, 2_000));
    results.set(fleetId('mosquitto', 50_000), paced(50_000, 50_000, 30_000));
    const row = saturation(results);
    expect(row.result).toMatch(/^gateway ≥ 70\.0k, ws 10\.0k frames\/s/);
    expect(row.ratio).toBe('≥ 7.00× ws');
  });
});

describe('the larger fleet', () => {
  const paced = (rate: number, cpu: number): LatencyResult => ({
    samples: 1000, p50Us: 500, p99Us: 5_000, p999Us: 9_000, maxUs: 9_000,
    ingestRate: rate, readingsRate: rate * 8, sentInWindow: rate * (FLEET_WINDOW_MS / 1000), lagTicks: 0, unknown: 0,
    serverCpu: cpu, loadCpu: 0.5, otherCpu: 0, closed: 0,
  });
  const big = (rows: ReturnType<typeof buildFleetRows>) => rows.filter((r) => r.setup.startsWith(`${BIG_FLEET_DEVICES.toLocaleString('en-US')} devices`));

  it('spreads the generator’s connections over loopback source addresses, perSource each', () => {
    expect(sourceAddress('127.0.0.1', 0, 20_000)).toBeUndefined();
    expect(sourceAddress('127.0.0.1', 19_999, 20_000)).toBeUndefined();
    expect(sourceAddress('127.0.0.1', 20_000, 20_000)).toBe('127.0.0.2');
    expect(sourceAddress('127.0.0.1', 99_999, 20_000)).toBe('127.0.0.5');
    // Another host: the kernel picks the route's address.
    expect(sourceAddress('localhost', 50_000, 20_000)).toBeUndefined();
    expect(() => sourceAddress('127.0.0.1', 254 * 100, 100)).toThrow(/254 loopback source addresses/);
  });

  it('connects from the address it was given (a real server sees 127.0.0.2)', async () => {
    const seen: string[] = [];
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      seen.push(s.remoteAddress ?? '');
      sockets.push(s);
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await expect(openWebSocket({ host: '127.0.0.1', port, path: '/device', localAddress: sourceAddress('127.0.0.1', 5, 4) })).rejects.toThrow(/refused/);
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    expect(seen).toEqual(['127.0.0.2']);
  });

  it('says what the runs need when they were not made, and compares the gateway with ws and the ceiling when they were', () => {
    expect(big(buildFleetRows(new Map(), new Map(), 'not measured: needs files'))).toEqual([expect.objectContaining({ missing: 'not measured: needs files' })]);
    const rows = big(
      buildFleetRows(
        new Map([
          [bigFleetId('gateway'), paced(BIG_FLEET_RATE, 2)],
          [bigFleetId('ws'), paced(BIG_FLEET_RATE, 2.5)],
          [bigFleetId('uws'), paced(BIG_FLEET_RATE, 0.5)],
        ]),
        new Map(),
        undefined,
      ),
    );
    expect(rows.map((r) => r.measurement)).toEqual([expect.stringMatching(/^Gateway/), expect.stringMatching(/^`ws`/), expect.stringMatching(/^Ceiling/)]);
    expect(rows[0]!.ratio).toMatch(/^CPU per frame 0\.80× ws; p99 1\.00× ws; CPU per frame 4\.00× ceiling$/);
    expect(rows[0]!.setup).toMatch(/loopback source addresses/);
  });
});
