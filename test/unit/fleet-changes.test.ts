/**
 * The fleet stream's JSON (gateway/live/summary-json.ts) and its `changes` form
 * (gateway/live/fleet-changes.ts, LIVE.md): what changed goes out, nothing else, and a client that
 * applies a snapshot and then the items it gets ends up with every device's summary.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceSummary, DeviceSummaryChanges, GatewayStats } from '../../devices/api/json.js';
import { DeviceState, DeviceTable, type DeviceLink } from '../../gateway/devices.js';
import { FleetChanges } from '../../gateway/live/fleet-changes.js';
import { FLEET_CHANGES_TOPIC, LiveHub, type LiveClient } from '../../gateway/live/hub.js';
import { summaryJson } from '../../gateway/live/summary-json.js';

const T0 = 1_764_130_000_000;
const F32 = 2;
const BOOL = 4;

function link(): DeviceLink {
  return { transport: 'ws', remoteAddress: '127.0.0.1', send: () => 'sent', close() {}, bufferedAmount: () => 0 };
}

/** A device that sent one frame of `values` (channel i + 1) at `t`. */
function frame(d: DeviceState, t: number, values: readonly number[], types: readonly number[] = values.map(() => F32)): void {
  d.frames++;
  d.readings += values.length;
  d.lastSeen = t;
  values.forEach((v, i) => d.setLast(i + 1, types[i]!, v, t));
}

function online(table: DeviceTable, id: string, t: number): DeviceState {
  const d = table.getOrCreate(id, { id, name: `the ${id}`, labels: { site: 'north' } } as never);
  table.markOnline(d, link(), t);
  return d;
}

/** What a client does with an item (LIVE.md): fields replace fields, `last` channels replace channels. */
function applyItem(known: Map<string, DeviceSummary>, item: DeviceSummaryChanges): void {
  const had = known.get(item.id);
  if (had === undefined) return void known.set(item.id, structuredClone(item) as DeviceSummary);
  const { last, ...rest } = structuredClone(item);
  Object.assign(had, rest);
  if (last !== undefined) Object.assign(had.last, last);
}

describe('summaryJson', () => {
  it('writes the same text as JSON.stringify for every kind of summary', () => {
    const table = new DeviceTable([], 'gw-1');
    const idle = table.getOrCreate('idle-1', undefined);
    const busy = online(table, 'climate-7', T0);
    frame(busy, T0 + 1000, [21.299999237060547, 48.25, 1, 0, Number.NaN, -0, 1e21, 5e-7], [F32, F32, BOOL, BOOL, F32, F32, F32, F32]);
    const gone = online(table, 'pump-"quoted"\\', T0);
    frame(gone, T0 + 5, [3]);
    table.markOffline(gone, gone.link!, 'timeout', 'silent for 30 s', T0 + 60_000);
    gone.lastErrorCode = 'FRAME_TRUNCATED';
    for (const d of [idle, busy, gone]) expect(summaryJson(d.toJSON('gw-1'))).toBe(JSON.stringify(d.toJSON('gw-1')));
  });
});

describe('FleetChanges', () => {
  it("gives a device's whole summary first, then only what changed: lastSeen, the counters, the channels sent", () => {
    const table = new DeviceTable([]);
    const d = online(table, 'climate-1', T0);
    frame(d, T0 + 1000, [20.5, 40, 1], [F32, F32, BOOL]);
    const changes = new FleetChanges<DeviceState>();
    const first = JSON.parse(changes.item(d, d.toJSON()));
    expect(first).toEqual(d.toJSON());

    expect(JSON.parse(changes.item(d, d.toJSON()))).toEqual({ id: 'climate-1', lastSeen: T0 + 1000 });

    // One frame with a new value on channel 1 only (2 and 3 repeat value and time: not changed).
    d.frames++;
    d.readings++;
    d.lastSeen = T0 + 2000;
    d.setLast(1, F32, 20.75, T0 + 2000);
    expect(JSON.parse(changes.item(d, d.toJSON()))).toEqual({
      id: 'climate-1',
      lastSeen: T0 + 2000,
      counters: { connections: 1, frames: 2, readings: 4, duplicates: 0, gaps: 0, errors: 0 },
      last: { '1': { value: 20.75, time: T0 + 2000 } },
    });

    // The same value at a new time is a change of that channel; a bool goes out as a bool.
    frame(d, T0 + 3000, [20.75, 40, 0], [F32, F32, BOOL]);
    const third = JSON.parse(changes.item(d, d.toJSON()));
    expect(Object.keys(third.last)).toEqual(['1', '2', '3']);
    expect(third.last['3']).toEqual({ value: false, time: T0 + 3000 });

    // Presence: the fields it moved, and nothing of the counters or channels.
    table.markOffline(d, d.link!, 'connection_lost', undefined, T0 + 4000);
    expect(JSON.parse(changes.item(d, d.toJSON()))).toEqual({
      id: 'climate-1',
      lastSeen: T0 + 3000,
      online: false,
      transport: null,
      disconnectedAt: T0 + 4000,
      offlineCause: 'connection_lost',
    });

    // Registry edits: labels and name.
    d.setEntry({ id: 'climate-1', name: 'greenhouse', labels: { site: 'south' } } as never);
    expect(JSON.parse(changes.item(d, d.toJSON()))).toEqual({ id: 'climate-1', lastSeen: T0 + 3000, name: 'greenhouse', labels: { site: 'south' } });
  });

  it('starts whole again after forget() and clear()', () => {
    const table = new DeviceTable([]);
    const d = online(table, 'climate-2', T0);
    frame(d, T0 + 1, [1, 2]);
    const changes = new FleetChanges<DeviceState>();
    changes.item(d, d.toJSON());
    changes.forget(d);
    expect(JSON.parse(changes.item(d, d.toJSON()))).toEqual(d.toJSON());
    changes.clear();
    expect(changes.size).toBe(0);
    expect(JSON.parse(changes.item(d, d.toJSON()))).toEqual(d.toJSON());
  });

  it('lets a client that applies a snapshot taken at any time, then every later item, end with every device as it is', () => {
    const table = new DeviceTable([]);
    const devices = ['a-1', 'a-2', 'a-3'].map((id) => online(table, id, T0));
    const changes = new FleetChanges<DeviceState>();
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    // A client joins at each of the first 30 steps; every step changes some devices, and those go out as items.
    const clients: Map<string, DeviceSummary>[] = [];
    for (let step = 0; step < 60; step++) {
      const t = T0 + step * 1000;
      const touched = devices.filter(() => rnd(2) === 0);
      for (const d of touched) {
        const k = rnd(4);
        if (k === 0 && d.online) table.markOffline(d, d.link!, 'closed', undefined, t);
        else if (k === 0) table.markOnline(d, link(), t);
        else if (k === 1) frame(d, t, [rnd(100), rnd(3)]);
        else if (k === 2) d.setLast(1 + rnd(4), F32, rnd(10), t);
        else d.errors++;
      }
      // A client's snapshot comes between two deltas: after this step's changes, before or after their items.
      const join = () => step < 30 && clients.push(new Map(devices.map((d) => [d.id, d.toJSON()])));
      const before = rnd(2) === 0;
      if (before) join();
      const items = touched.map((d) => JSON.parse(changes.item(d, d.toJSON())) as DeviceSummaryChanges);
      for (const c of clients) for (const item of items) applyItem(c, item);
      if (!before) join();
    }
    // The last state of a device that did not change since its last item is still what it shows.
    for (const c of clients) for (const d of devices) expect(c.get(d.id)).toEqual(d.toJSON());
  });
});

describe('LiveHub fleet forms', () => {
  function client(): LiveClient & { topics: Set<string> } {
    const topics = new Set<string>();
    const conn = { send: () => 'sent' as const, bufferedAmount: () => 0, subscribe: (t: string) => void topics.add(t), unsubscribe: (t: string) => void topics.delete(t), close() {} };
    return { conn, streams: new Set<string>(), congested: false, missedFrom: new Map<string, number>(), missedDirect: 0, topics };
  }

  it('builds each form only for its followers, once per delta, and a client switches form by subscribing again', () => {
    const table = new DeviceTable([]);
    const hub = new LiveHub(table, () => ({}) as GatewayStats, { flushMs: 100, maxPointsPerChannel: 2, replay: 10, budgetBytes: 1 << 20 });
    const published: [string, unknown][] = [];
    hub.onPublish((topic, text) => published.push([topic, JSON.parse(text)]));
    const d = online(table, 'climate-3', T0);
    const c = client();
    hub.subscribe(c, 'fleet', 'changes');
    expect([...c.topics]).toEqual([FLEET_CHANGES_TOPIC]);
    frame(d, T0 + 1, [5]);
    hub.touch(d);
    hub.flush(T0 + 2);
    expect(published).toEqual([[FLEET_CHANGES_TOPIC, { type: 'fleet', full: false, changes: true, devices: [JSON.parse(JSON.stringify(d.toJSON()))] }]]);
    frame(d, T0 + 3, [6]);
    hub.touch(d);
    hub.flush(T0 + 4);
    expect(published[1]).toEqual([FLEET_CHANGES_TOPIC, { type: 'fleet', full: false, changes: true, devices: [{ id: 'climate-3', lastSeen: T0 + 3, counters: d.toJSON().counters, last: { '1': { value: 6, time: T0 + 3 } } }] }]);

    const whole = client();
    hub.subscribe(whole, 'fleet');
    hub.subscribe(c, 'fleet', 'full');
    expect([...c.topics]).toEqual(['fleet']);
    frame(d, T0 + 5, [7]);
    hub.touch(d);
    hub.flush(T0 + 6);
    expect(published.slice(2)).toEqual([['fleet', { type: 'fleet', full: false, devices: [JSON.parse(JSON.stringify(d.toJSON()))] }]]);
  });
});
