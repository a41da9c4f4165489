/**
 * The fleet snapshot a /live client gets when it begins following `fleet` (gateway/live/fleet-snapshot.ts
 * and its use in hub.ts): written a slice per loop turn, so a big fleet does not hold the event loop,
 * and still exact: the client joins the topic only when its snapshot goes out, with what changed meanwhile.
 */
import { describe, expect, it } from 'vitest';
import type { GatewayStats } from '../../devices/api/json.js';
import { DeviceTable, type DeviceState } from '../../gateway/devices.js';
import { FleetSnapshots, SNAPSHOT_SLICE } from '../../gateway/live/fleet-snapshot.js';
import { LiveHub, type LiveClient } from '../../gateway/live/hub.js';

const turn = () => new Promise((r) => setImmediate(r));

function fleet(n: number): DeviceTable {
  const table = new DeviceTable([]);
  for (let i = 0; i < n; i++) table.getOrCreate(`dev-${i}`, undefined).frames = i;
  return table;
}

interface Sent {
  type: string;
  full?: boolean;
  devices?: { id: string; counters: { frames: number } }[];
  removed?: string[];
}

/** A client whose connection records what it is sent, and when it joined the fleet topic (by message count). */
function client(buffered = () => 0) {
  const sent: Sent[] = [];
  const bytes: number[] = [];
  let joinedAt: number | undefined;
  const c: LiveClient = {
    conn: {
      send: (t) => {
        const text = typeof t === 'string' ? t : Buffer.from(t).toString('utf8');
        bytes.push(Buffer.byteLength(text));
        sent.push(JSON.parse(text) as Sent);
        return 'sent';
      },
      bufferedAmount: buffered,
      subscribe: (topic) => {
        if (topic === 'fleet') joinedAt = sent.length;
      },
      unsubscribe: (topic) => {
        if (topic === 'fleet') joinedAt = undefined;
      },
      close() {},
    },
    streams: new Set(),
    congested: false,
    missedFrom: new Map(),
    missedDirect: 0,
  };
  return { c, sent, bytes, joined: () => joinedAt };
}

describe('fleet snapshots', () => {
  it('are written a slice of devices per loop turn, every device once, for every client that came meanwhile', async () => {
    const table = fleet(7);
    const got: { clients: readonly string[]; ids: string[]; since: string[] }[] = [];
    const snaps = new FleetSnapshots<string>(table, (clients, snapshot, since) => {
      const msg = JSON.parse(Buffer.from(snapshot).toString('utf8')) as Sent;
      expect(msg).toMatchObject({ type: 'fleet', full: true });
      got.push({ clients: [...clients], ids: msg.devices!.map((d) => d.id), since: [...since].map((d) => d.id) });
    }, 3);
    snaps.request('a');
    expect(got).toEqual([]); // 7 devices, 3 per turn: not in one go
    expect(snaps.waits('a')).toBe(true);
    await turn();
    snaps.request('b'); // served by the snapshot in progress
    snaps.published(table.get('dev-1')!); // already written: b and a missed its delta
    snaps.published(table.get('dev-6')!); // not yet: the snapshot will have it as it is now
    await turn();
    await turn();
    expect(got).toEqual([{ clients: ['a', 'b'], ids: ['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4', 'dev-5', 'dev-6'], since: ['dev-1'] }]);
    expect(snaps.waits('a')).toBe(false);
    // The next one starts afresh, and a client that left is not served.
    snaps.request('c');
    snaps.drop('c');
    for (let i = 0; i < 3; i++) await turn();
    expect(got).toHaveLength(1);
  });

  it('a small fleet gets its snapshot at once, before the client joins the topic', () => {
    const hub = new LiveHub(fleet(3), () => ({}) as GatewayStats, { flushMs: 100, maxPointsPerChannel: 2, replay: 10, budgetBytes: 1 << 20 });
    const k = client();
    hub.subscribe(k.c, 'fleet');
    expect(k.sent.map((m) => [m.full, m.devices!.length])).toEqual([[true, 3]]);
    expect(k.joined()).toBe(1);
  });

  it('a client of a big fleet joins the topic only with its snapshot, and gets what changed meanwhile in a delta right after', async () => {
    const n = 2 * SNAPSHOT_SLICE + 10;
    const table = fleet(n);
    const hub = new LiveHub(table, () => ({}) as GatewayStats, { flushMs: 100, maxPointsPerChannel: 2, replay: 10, budgetBytes: 1 << 30 });
    const published: Sent[] = [];
    hub.onPublish((topic, text) => topic === 'fleet' && published.push(JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8')) as Sent));
    const k = client();
    hub.subscribe(k.c, 'fleet');
    expect(k.sent).toEqual([]);
    // dev-0 was written into the snapshot already; it changes and goes out in a delta the client is not subscribed to.
    await turn();
    const d0 = table.get('dev-0')!;
    d0.frames = 1_000_000;
    hub.touch(d0);
    hub.flush(Date.now());
    expect(published.map((m) => m.devices!.map((d) => d.id))).toEqual([['dev-0']]);
    expect(k.joined()).toBeUndefined();
    for (let i = 0; i < 3; i++) await turn();
    const [snapshot, catchUp] = k.sent;
    expect(snapshot).toMatchObject({ type: 'fleet', full: true });
    expect(snapshot!.devices).toHaveLength(n);
    expect(snapshot!.devices![0]).toMatchObject({ id: 'dev-0', counters: { frames: 0 } }); // as it was when written
    expect(catchUp).toMatchObject({ type: 'fleet', full: false, devices: [{ id: 'dev-0', counters: { frames: 1_000_000 } }] });
    expect(k.joined()).toBe(2);
  });

  it('does not count a client’s own snapshot against its budget, only what waits behind it', () => {
    const budget = 16 * 1024;
    const table = fleet(400); // a snapshot of ~140 KB: several budgets
    let buffered = 0;
    const hub = new LiveHub(table, () => ({}) as GatewayStats, { flushMs: 100, maxPointsPerChannel: 2, replay: 10, budgetBytes: budget });
    const k = client(() => buffered);
    hub.clients.add(k.c);
    hub.subscribe(k.c, 'fleet');
    const size = k.bytes[0]!;
    expect(size).toBeGreaterThan(3 * budget);
    // All of it still waits to be sent: not congested, else it would get the next snapshot once this
    // one drained, and be congested by that one again, and never see a delta.
    buffered = size;
    hub.checkBudgets();
    expect(k.c.congested).toBe(false);
    expect(k.joined()).toBe(1);
    // What queues behind the snapshot beyond the budget does count.
    buffered = size + budget + 1;
    hub.checkBudgets();
    expect(k.c.congested).toBe(true);
    // Caught up: a new snapshot, then the topic again.
    buffered = 0;
    hub.checkBudgets();
    expect(k.c.congested).toBe(false);
    expect(k.sent.filter((m) => m.full === true)).toHaveLength(2);
    expect(k.joined()).toBe(k.sent.length);
  });
});
