/** Device streams: the replay rings' byte budget over all watched devices. */
import { describe, expect, it } from 'vitest';
import type { GatewayStats } from '../../devices/api/json.js';
import { TelemetryBatch, type FrameHeader } from '../../devices/codec/index.js';
import { DeviceState } from '../../gateway/devices.js';
import { DeviceStreams } from '../../gateway/live/device-streams.js';

function batch(value: number): TelemetryBatch {
  const b = new TelemetryBatch(4);
  b.count = 4;
  for (let i = 0; i < 4; i++) {
    b.channels[i] = i + 1;
    b.types[i] = 2;
    b.values[i] = value + i / 7;
    b.offsets[i] = 0;
  }
  return b;
}

function run(streams: DeviceStreams, devices: DeviceState[], flushes: number): void {
  let t = 1_700_000_000_000;
  for (let f = 0; f < flushes; f++) {
    for (const d of devices) streams.add(d, { timestamp: (t += 1) } as FrameHeader, batch(f));
    streams.flush(t);
  }
}

describe('live device streams', () => {
  it('joins points relayed from another instance with local ones in one message, and passes on only the local ones', () => {
    const streams = new DeviceStreams(10, 50);
    const d = new DeviceState('climate-9', undefined);
    streams.watch(d.id);
    streams.addRelayed(d.id, { '1': [[5, 50]] }, false, 0);
    streams.add(d, { timestamp: 3 } as FrameHeader, batch(1));
    streams.addRelayed(d.id, { '1': [[7, 70]], '9': [[6, 60]] }, false, 0);
    const out = streams.flush(10);
    expect(out).toHaveLength(1);
    const m = JSON.parse(out[0]!.json);
    expect(m.seq).toBe(1);
    expect(m.points['1']).toEqual([[3, 1], [5, 50], [7, 70]]);
    expect(m.points['9']).toEqual([[6, 60]]);
    expect(Object.keys(out[0]!.local!.points).sort()).toEqual(['1', '2', '3', '4']);
    expect(out[0]!.local!.points['1']).toEqual([[3, 1]]);
    // Relayed points alone: shown, nothing to pass on.
    streams.addRelayed(d.id, { '1': [[11, 110]] }, true, 0);
    const next = streams.flush(20);
    expect(JSON.parse(next[0]!.json)).toMatchObject({ seq: 2, downsampled: true, points: { '1': [[11, 110]] } });
    expect(next[0]!.local).toBeUndefined();
  });

  it('breakAt ends resume across the point: older seqs answer too_old, the next message skips one', () => {
    const streams = new DeviceStreams(2, 50);
    const d = new DeviceState('climate-8', undefined);
    streams.watch(d.id);
    run(streams, [d], 3);
    expect(streams.since(d.id, 1)).toHaveLength(2);
    streams.breakAt(d.id);
    expect(streams.since(d.id, 1)).toBeUndefined();
    expect(streams.since(d.id, 3)).toBeUndefined();
    expect(streams.since(d.id, 4)).toEqual([]);
    run(streams, [d], 1);
    expect(JSON.parse(streams.since(d.id, 4)![0]!).seq).toBe(5);
  });

  it('keeps `replay` messages per stream while the budget allows, and resumes from any of them', () => {
    const streams = new DeviceStreams(2, 50, 64 * 1024 * 1024);
    const devices = [new DeviceState('climate-1', undefined), new DeviceState('climate-2', undefined)];
    for (const d of devices) streams.watch(d.id);
    run(streams, devices, 80);
    expect(streams.since('climate-1', 30)).toHaveLength(50);
    expect(streams.since('climate-1', 29)).toBeUndefined();
  });

  it('holds about the byte budget however many devices one client watches, each ring keeping at least 10', () => {
    const budget = 200_000;
    const streams = new DeviceStreams(2, 600, budget);
    const devices = Array.from({ length: 500 }, (_, i) => new DeviceState(`power-${i}`, undefined));
    for (const d of devices) streams.watch(d.id);
    run(streams, devices, 120);
    // 500 streams of ~225-character messages: the budget allows ~1.8 each, so each keeps the minimum.
    expect(streams.since('power-7', 110)).toHaveLength(10);
    expect(streams.since('power-7', 109)).toBeUndefined();
    expect(streams.ringBytes).toBeLessThanOrEqual(500 * 10 * 300); // 10 messages of ~225 characters each

    const fewer = new DeviceStreams(2, 600, budget);
    const some = devices.slice(0, 20);
    for (const d of some) fewer.watch(d.id);
    run(fewer, some, 200);
    // 20 streams share the budget: more than the minimum each, and the total stays within it.
    const kept = fewer.since('power-3', 0) === undefined ? 200 - findOldest(fewer, 'power-3') : 200;
    expect(kept).toBeGreaterThan(10);
    expect(kept).toBeLessThan(200);
    expect(fewer.ringBytes).toBeLessThanOrEqual(budget * 1.1);
  });
});

/** The lowest seq a stream can still resume after. */
function findOldest(s: DeviceStreams, id: string): number {
  let seq = 0;
  while (s.since(id, seq) === undefined) seq++;
  return seq;
}

describe('live hub fleet deltas', () => {
  it('builds no fleet delta while nobody follows the fleet, and sends one per flush once someone does', async () => {
    const { DeviceTable } = await import('../../gateway/devices.js');
    const { LiveHub } = await import('../../gateway/live/hub.js');
    const table = new DeviceTable([]);
    // The stats source is only read by start()'s timer, which this test does not run.
    const hub = new LiveHub(table, () => ({}) as GatewayStats, { flushMs: 100, maxPointsPerChannel: 2, replay: 10, budgetBytes: 1 << 20 });
    const topics: string[] = [];
    hub.onPublish((topic) => topics.push(topic));
    const d = table.getOrCreate('climate-9', undefined);
    hub.touch(d);
    hub.flush(Date.now());
    expect(topics).toEqual([]);
    const conn = { send: () => 'sent' as const, bufferedAmount: () => 0, subscribe() {}, unsubscribe() {}, close() {} };
    const client = { conn, streams: new Set<string>(), congested: false, missedFrom: new Map<string, number>(), missedDirect: 0 };
    hub.subscribe(client, 'fleet');
    hub.touch(d);
    hub.flush(Date.now());
    expect(topics).toEqual(['fleet']);
    hub.unsubscribe(client, 'fleet');
    hub.touch(d);
    hub.flush(Date.now());
    expect(topics).toEqual(['fleet']);
  });
});
