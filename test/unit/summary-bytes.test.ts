/**
 * The fleet view writes device summaries as bytes (gateway/live/summary-bytes.ts) instead of
 * JSON.stringify(toJSON()): the text must stay the same, byte for byte, for every kind of device
 * state, or the dashboard would read something else than the API answers.
 */
import { describe, expect, it } from 'vitest';
import { DeviceState, type DeviceLink } from '../../gateway/devices.js';
import { JsonBytes } from '../../gateway/live/json-bytes.js';
import { writeSummary } from '../../gateway/live/summary-bytes.js';

const link = (o: Partial<DeviceLink> = {}): DeviceLink => ({ transport: 'ws', remoteAddress: '127.0.0.1', send: () => 'sent', close() {}, bufferedAmount: () => 0, ...o });

const text = (w: JsonBytes, d: DeviceState, local: string | null) => {
  w.begin();
  writeSummary(w, d, local);
  return Buffer.from(w.bytes()).toString('utf8');
};

/** A small deterministic generator, so a failure names a reproducible case. */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

describe('fleet summaries as bytes', () => {
  it('writes exactly what JSON.stringify(toJSON()) writes, for 2,000 random device states', () => {
    const r = rng(7);
    const w = new JsonBytes();
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
    const names = [undefined, 'Kühlraum 3', 'pump "A"', 'back\\slash', 'tab\there', '😀 sensor', 'lone \ud800 surrogate', ''];
    const values = [0, -0, 1, -7, 21.5, 21.299999237060547, 0.1, -1e-7, 1e21, 3.4028234663852886e38, 2147483647, -2147483648, 123456];
    for (let i = 0; i < 2000; i++) {
      const d = new DeviceState(`dev-${i}`, r() < 0.3 ? undefined : { id: `dev-${i}`, tokenHash: 'x', ...(r() < 0.7 ? { name: pick(names) } : {}), ...(r() < 0.5 ? { labels: { site: pick(['north', 'süd', '"q"']), '2': 'numeric key', floor: String(i) } } : {}), ...(r() < 0.2 ? { disabled: true } : {}), ...(r() < 0.5 ? { type: pick(['climate', 'power']) } : {}) } as never);
      d.online = r() < 0.6;
      if (d.online || r() < 0.3) d.link = link({ transport: pick(['ws', 'mqtt'] as const), ...(r() < 0.2 ? { instance: 'gw-2' } : {}), ...(r() < 0.1 ? { shared: true } : {}) });
      if (r() < 0.8) d.lastSeen = 1_700_000_000_000 + Math.floor(r() * 1e9);
      if (r() < 0.7) d.connectedAt = 1_700_000_000_000 + Math.floor(r() * 1e9);
      if (r() < 0.4) d.disconnectedAt = 1_700_000_000_000 + Math.floor(r() * 1e9);
      if (r() < 0.4) d.offlineCause = pick(['closed', 'timeout', 'kicked'] as never[]);
      if (r() < 0.2) d.offlineDetail = pick(['socket closed by the "device"', 'idle 30 s']);
      d.connections = Math.floor(r() * 5);
      d.frames = Math.floor(r() * 1e7);
      d.readings = d.frames * 8;
      d.duplicates = Math.floor(r() * 10);
      d.errors = Math.floor(r() * 3);
      if (r() < 0.2) d.lastErrorCode = 'FRAME_TRUNCATED';
      if (r() < 0.7) d.seq.accept(Math.floor(r() * 2 ** 32), Math.floor(r() * 100), false);
      const channels = Math.floor(r() * 12);
      for (let c = 0; c < channels; c++) {
        const ch = Math.floor(r() * 300);
        const type = pick([1, 2, 3, 4]);
        d.setLast(ch, type, type === 4 ? (r() < 0.5 ? 1 : 0) : pick(values) * (r() < 0.5 ? 1 : Math.fround(r())), 1_700_000_000_000 + Math.floor(r() * 1e6) - 500_000);
      }
      const local = pick([null, 'gw-1']);
      expect(text(w, d, local), `case ${i}`).toBe(JSON.stringify(d.toJSON(local)));
    }
  });

  it('numbers and strings as JSON.stringify has them, the buffer growing as needed', () => {
    const w = new JsonBytes();
    for (const n of [0, -0, 9, 10, 2147483647, 2147483648, 1764130000123, -1764130000123, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 100000000, 0.5, 1e21, 1e-7, NaN, Infinity, -Infinity, 2 ** 60]) {
      expect(Buffer.from(w.begin().number(n).bytes()).toString()).toBe(JSON.stringify(n));
    }
    const long = 'x'.repeat(200_000) + 'é';
    expect(Buffer.from(w.begin().string(long).bytes()).toString()).toBe(JSON.stringify(long));
  });

  it('a device with shares from other cluster instances is written as toJSON merges them', () => {
    const d = new DeviceState('dev-x', undefined);
    d.online = true;
    d.link = link({ instance: 'gw-2' });
    d.setLast(1, 1, 5, 1_700_000_000_000);
    d.elsewhere = new Map([['gw-3', { frames: 4, readings: 32, duplicates: 0, errors: 0, gaps: 0, connections: 1, lastSeen: 1_700_000_000_500, epoch: 9, ackedSeq: 4, lastError: null, last: [1, 1, 6, 1_700_000_000_400] }]]);
    expect(text(new JsonBytes(), d, 'gw-1')).toBe(JSON.stringify(d.toJSON('gw-1')));
  });
});
