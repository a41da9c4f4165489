/**
 * Issue 15 point 8 with the SDK and a real gateway: the SDK never seals a frame over the size limit it
 * knows, and drops (counted) a frame the gateway still refuses as too large instead of resending it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { sdkDevice } from '../helpers/devices.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { once } from '../helpers/wait.js';

let gws: TestGateway[] = [];
let clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const g of gws.splice(0)) await g.close();
});

const readings = (n: number) => Array.from({ length: n }, (_, i) => ({ channel: 0, value: i }));

describe('the SDK and the gateway frame size limit', () => {
  it('splits readings into frames under maxFrameBytes, all taken and acked', async () => {
    const g = await startGateway({ maxFrameBytes: 1024 });
    gws.push(g);
    const c = sdkDevice(g.ws, 'small-frames', clients, { batchMs: 0, maxReadingsPerFrame: 1000, maxFrameBytes: 1024 });
    await c.connect();
    const t0 = Date.now() - 60_000;
    // 500 f64 readings at one time: 22 + 500 × 10 bytes in one frame, over the limit; the SDK makes 5.
    c.send(readings(500), t0);
    await c.close();
    expect(c.stats).toMatchObject({ unacked: 0, rejected: 0, reconnects: 0 });
    expect(c.stats.sent).toBe(5);
    const { body } = await g.api('/api/devices/small-frames');
    expect(body.counters).toMatchObject({ frames: 5, readings: 500, errors: 0 });
  });

  it('drops a frame the gateway refuses as too large, counted, and does not resend it', async () => {
    const g = await startGateway({ maxFrameBytes: 1024 });
    gws.push(g);
    const c = sdkDevice(g.ws, 'big-frame', clients, { batchMs: 0, maxReadingsPerFrame: 1000 });
    const rejected: number[] = [];
    c.on('rejected', (e) => rejected.push(e.seq));
    await c.connect();
    const ended = once<{ code: number; willReconnect: boolean }>(c, 'disconnected');
    c.send(readings(500));
    const [info] = await ended;
    expect(info).toMatchObject({ code: 4401, willReconnect: false });
    expect(rejected).toEqual([0]);
    expect(c.stats).toMatchObject({ rejected: 1, unacked: 0 });
    expect(c.unackedFrames()).toEqual([]);
  });
});
