/** The simulator's small parts: options, ids, the due queue, latency percentiles, the chaos wire, malformed frames, status. */
import { describe, expect, it } from 'vitest';
import { decodeFrame, FrameError, encodeTelemetry } from '../../devices/codec/index.js';
import type { Transport, TransportFactory, TransportHandlers } from '../../devices/sdk/index.js';
import { Wire, type WireContext } from '../../simulator/chaos.js';
import { emptyCounters, addCounters } from '../../simulator/counters.js';
import { deviceIdOf } from '../../simulator/ids.js';
import { bucketOf, newHistogram, percentile, record } from '../../simulator/latency.js';
import { malformedFrame } from '../../simulator/malformed.js';
import { prng } from '../../simulator/models/noise.js';
import { helpText, OptionError, parseOptions } from '../../simulator/options.js';
import { DueQueue } from '../../simulator/schedule.js';
import { formatStatus, StatusPrinter } from '../../simulator/status.js';
import { buildSummary, formatSummary } from '../../simulator/summary.js';

describe('options', () => {
  const base = ['--fleet-key', 'k'];

  it('has a default for everything but the fleet key, and the URL follows the transport', () => {
    const { options } = parseOptions(base, {});
    expect(options).toMatchObject({ transport: 'ws', url: 'ws://localhost:8080', devices: 100, rate: 1, durationS: 0, batchMs: 0, types: ['climate', 'power', 'vibration'], json: false, faults: true });
    expect(parseOptions([...base, '--transport', 'mqtt'], {}).options.url).toBe('mqtt://localhost:1883');
    expect(parseOptions([...base, '--url', 'mqtt://127.0.0.1:1999'], {}).options).toMatchObject({ transport: 'mqtt', maxConnecting: 50 });
    expect(parseOptions(base, {}).options.maxConnecting).toBe(500);
  });

  it('reads every flag, --flag=value, --no-<bool>, and SIMULATE_* variables (flags win)', () => {
    const { options } = parseOptions(
      ['--devices=5', '--rate', '2.5', '--duration', '3', '--types', 'power,climate', '--id-prefix', 'a-', '--batch-ms', '20', '--workers', '1', '--json', '--no-faults',
        '--churn', '0.1', '--duplicate', '0.2', '--reorder', '0.3', '--skew', '5000', '--malformed', '0.01', '--outage', '10:5', '--seed', '9', '--connect-rate', '50', '--drain', '4'],
      { SIMULATE_FLEET_KEY: 'from-env', SIMULATE_DEVICES: '99' },
    );
    expect(options).toMatchObject({
      fleetKey: 'from-env', devices: 5, rate: 2.5, durationS: 3, types: ['power', 'climate'], idPrefix: 'a-', batchMs: 20, workers: 1, json: true, faults: false,
      churn: 0.1, duplicate: 0.2, reorder: 0.3, skewMs: 5000, malformed: 0.01, outage: { startS: 10, durationS: 5 }, seed: 9, connectRate: 50, drainS: 4,
    });
  });

  it('names the flag and the variable in every error', () => {
    expect(() => parseOptions([], {})).toThrow(/--fleet-key \/ SIMULATE_FLEET_KEY is required/);
    expect(() => parseOptions([...base, '--devices', '0'], {})).toThrow(/--devices \/ SIMULATE_DEVICES.*below the minimum 1/);
    expect(() => parseOptions([...base, '--types', 'climate,toaster'], {})).toThrow(/unknown device type "toaster"/);
    expect(() => parseOptions([...base, '--outage', '30'], {})).toThrow(/--outage.*START:SECONDS/);
    expect(() => parseOptions([...base, '--duplicate', '2'], {})).toThrow(/--duplicate.*maximum 1/);
    expect(() => parseOptions([...base, '--url', 'http://x'], {})).toThrow(/--url/);
    expect(() => parseOptions([...base, '--url', 'ws://x', '--transport', 'mqtt'], {})).toThrow(/does not go with --transport mqtt/);
    expect(() => parseOptions([...base, '--bogus'], {})).toThrow(OptionError);
    // A flag where a value belongs is a forgotten value; --ca names a file that must hold a certificate.
    expect(() => parseOptions(['--fleet-key', '--devices', '5'], {})).toThrow(/--fleet-key needs a value, got the flag --devices/);
    expect(parseOptions(['--fleet-key=--odd', '--devices', '5'], {}).options).toMatchObject({ fleetKey: '--odd', devices: 5 });
    expect(() => parseOptions([...base, '--ca', '/missing/ca.pem'], {})).toThrow(/--ca \/ SIMULATE_CA: \/missing\/ca.pem cannot be read/);
    expect(() => parseOptions([...base, '--rate', '2'], { SIMULATE_RATE: 'x' })).not.toThrow();
  });

  it('--demo presets a small in-thread fleet; explicit flags still win', () => {
    expect(parseOptions([...base, '--demo'], {}).options).toMatchObject({ devices: 24, rate: 1, durationS: 0, workers: 0 });
    expect(parseOptions([...base, '--demo', '--devices', '6'], {}).options.devices).toBe(6);
  });

  it('--help lists every flag with its default', () => {
    const help = helpText();
    for (const flag of ['transport', 'url', 'fleet-key', 'devices', 'rate', 'duration', 'types', 'id-prefix', 'batch-ms', 'workers', 'connect-rate', 'max-connecting', 'drain', 'seed', 'faults', 'json', 'churn', 'duplicate', 'reorder', 'skew', 'malformed', 'outage', 'demo']) {
      expect(help).toMatch(new RegExp(`--${flag}\\b.*default: `));
    }
    expect(parseOptions(['--help'], {}).help).toBe(true);
  });
});

describe('device ids', () => {
  it('are <type>-<prefix><n padded to 4>, types in turn, numbered per type from 1', () => {
    const types = ['climate', 'power', 'vibration'] as const;
    expect([0, 1, 2, 3, 4].map((i) => deviceIdOf([...types], i))).toEqual(['climate-0001', 'power-0001', 'vibration-0001', 'climate-0002', 'power-0002']);
    expect(deviceIdOf(['power'], 41, 'b-')).toBe('power-b-0042');
    expect(deviceIdOf(['power'], 12344)).toBe('power-12345');
  });
});

describe('DueQueue', () => {
  it('pops due items in time order and skips stale entries', () => {
    const q = new DueQueue<{ due: number; name: string }>();
    const items = Array.from({ length: 200 }, (_, i) => ({ due: NaN, name: `d${i}` }));
    const rnd = prng(5);
    for (const it of items) q.push(it, Math.floor(rnd() * 1000));
    q.push(items[0]!, 5000); // rescheduled: its first entry is stale now
    const out: number[] = [];
    let x;
    while ((x = q.popDue(1000)) !== undefined) out.push(x.due);
    expect(out).toHaveLength(199);
    expect(out).toEqual([...out].sort((a, b) => a - b));
    expect(q.next).toBe(5000);
    expect(q.popDue(4999)).toBeUndefined();
    expect(q.popDue(5000)).toBe(items[0]);
  });
});

describe('latency histogram', () => {
  it('gives percentiles within 5% and merges', () => {
    const h = newHistogram();
    for (let i = 1; i <= 1000; i++) record(h, i);
    expect(percentile(h, 50)! / 500).toBeCloseTo(1, 1);
    expect(percentile(h, 99)! / 990).toBeCloseTo(1, 1);
    expect(percentile(newHistogram(), 50)).toBeNull();
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(1e12)).toBe(h.length - 1);
    const a = emptyCounters();
    const b = emptyCounters();
    b.sent = 3;
    b.errorsByCode.X = 2;
    b.latency.set(h);
    addCounters(a, b);
    addCounters(a, b);
    expect(a).toMatchObject({ sent: 6, errors: 0, errorsByCode: { X: 4 } });
    expect(percentile(a.latency, 50)).toBe(percentile(h, 50));
  });
});

/** A fake transport recording what the wire wrote. */
function fakeInner(): { factory: TransportFactory; written: number[]; destroyed: () => boolean } {
  const written: number[] = [];
  let destroyed = false;
  const factory: TransportFactory = (handlers) => {
    const t: Transport = {
      send: (f) => written.push(new DataView(f.buffer, f.byteOffset).getUint32(8, true)),
      close: () => handlers.close({ code: 1000, reason: '', unauthorized: false }),
      destroy: () => {
        destroyed = true;
      },
    };
    return t;
  };
  return { factory, written, destroyed: () => destroyed };
}

const frameOf = (seq: number): Uint8Array => encodeTelemetry({ epoch: 1, seq, timestamp: 1 }, [{ channel: 1, value: seq }]);
const noop: TransportHandlers = { open: () => {}, message: () => {}, close: () => {} };

function ctx(o: Partial<WireContext>): WireContext {
  return { counters: emptyCounters(), duplicate: 0, reorder: 0, random: prng(1), outageUntil: 0, ...o };
}

describe('the chaos wire', () => {
  it('passes frames through untouched by default and measures ack latency', () => {
    const inner = fakeInner();
    const c = ctx({});
    const wire = new Wire(inner.factory, c, 100);
    const t = wire.factory(noop);
    for (let s = 0; s < 5; s++) t.send(frameOf(s));
    expect(inner.written).toEqual([0, 1, 2, 3, 4]);
    wire.acked(4, 5, Date.now() + 20);
    expect(percentile(c.counters.latency, 50)).toBeGreaterThan(10);
  });

  it('--duplicate writes copies; --reorder swaps neighbours, but only after the first ack of a boot', () => {
    const dup = fakeInner();
    const c1 = ctx({ duplicate: 1 });
    const t1 = new Wire(dup.factory, c1, 100).factory(noop);
    t1.send(frameOf(0));
    t1.send(frameOf(1));
    expect(dup.written).toEqual([0, 0, 1, 1]);
    expect(c1.counters.duplicated).toBe(2);

    const re = fakeInner();
    const c2 = ctx({ reorder: 1 });
    const wire = new Wire(re.factory, c2, 100);
    const t2 = wire.factory(noop);
    t2.send(frameOf(0));
    t2.send(frameOf(1));
    expect(re.written).toEqual([0, 1]); // the gateway has not acked this boot yet
    wire.acked(1, 2, Date.now());
    t2.send(frameOf(2)); // held
    t2.send(frameOf(3)); // written, then the held one
    expect(re.written).toEqual([0, 1, 3, 2]);
    expect(c2.counters.reordered).toBe(1);
  });

  it('drop() destroys the connection; during an outage new connections wait', async () => {
    const inner = fakeInner();
    const c = ctx({ outageUntil: Date.now() + 60_000 });
    const wire = new Wire(inner.factory, c, 100);
    let closed = false;
    wire.factory({ ...noop, close: () => (closed = true) });
    expect(wire.drop()).toBe(true); // the delayed attempt is abandoned
    await new Promise((r) => setTimeout(r, 0));
    expect(closed).toBe(true);
    c.outageUntil = 0;
    wire.factory(noop);
    expect(wire.drop()).toBe(true);
    expect(inner.destroyed()).toBe(true);
  });
});

describe('malformed frames', () => {
  it('each kind is refused by the decoder with a FRAME_* code', () => {
    const codes = [0, 1, 2, 3].map((k) => {
      const f = decodeFrame(malformedFrame(k, 1_700_000_000_000));
      return f instanceof FrameError ? f.code : 'decoded';
    });
    expect(codes).toEqual(['FRAME_TRUNCATED', 'FRAME_BAD_VERSION', 'FRAME_UNKNOWN_TYPE', 'FRAME_VALUE_OUT_OF_RANGE']);
  });
});

describe('status and summary', () => {
  const counters = Object.assign(emptyCounters(), { devices: 10, connected: 9, sent: 1000, acked: 990, resent: 2, reconnects: 1, unacked: 10 });

  it('redraws one line in place on a terminal, prints plain lines every few seconds otherwise', () => {
    const snap = { elapsedS: 12, phase: 'running' as const, counters, framesPerSecond: 83.4, ackP50: 3.2, ackP99: 12 };
    expect(formatStatus(snap)).toBe('[12s] 9/10 connected | 83 frames/s | sent 1,000 acked 990 | resent 2 | reconnects 1 | ack p50 3.2 ms p99 12 ms');
    const tty: string[] = [];
    const p1 = new StatusPrinter({ isTTY: true, columns: 200, write: (s) => tty.push(s) }, 5);
    p1.update(snap);
    p1.update({ ...snap, elapsedS: 12.5 });
    p1.end();
    expect(tty).toHaveLength(3);
    expect(tty[0]).toMatch(/^\r\x1b\[2K\[12s\]/);
    expect(tty[2]).toBe('\n');
    const plain: string[] = [];
    const p2 = new StatusPrinter({ write: (s) => plain.push(s) }, 5);
    for (let t = 0; t <= 10; t += 0.5) p2.update({ ...snap, elapsedS: t });
    expect(plain).toHaveLength(3);
    expect(plain.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  });

  it('the summary is ok only when every frame sent was acked', () => {
    const { options } = parseOptions(['--fleet-key', 'k', '--devices', '10'], {});
    const bad = buildSummary(options, counters, 10, 1);
    expect(bad).toMatchObject({ ok: false, devices: 10, sent: 1000, acked: 990, unacked: 10 });
    expect(formatSummary(bad)).toMatch(/NOT OK: 10 frames unacked/);
    const good = buildSummary(options, { ...counters, acked: 1000, unacked: 0 }, 10, 1);
    expect(good.ok).toBe(true);
    expect(formatSummary(good)).toMatch(/OK: every one of the 1,000 frames sent was acked/);
    expect(JSON.parse(JSON.stringify(good))).toMatchObject({ devices: 10, sent: 1000, acked: 1000, ackLatencyMs: { p50: null, p99: null } });
  });
});
