/** The device SDK against a real gateway: nothing lost, nothing doubled, across restarts and a kill. */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceClient, DeviceClientOptions } from '../../devices/sdk/index.js';
import { MemoryStorage } from '../../gateway/storage/memory.js';
import { sdkDevice, stream } from '../helpers/devices.js';
import { api, gatewayArgs, historyValues, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const BASE_TIME = 1_700_000_000_000;
let gws: TestGateway[] = [];
let children: ChildGateway[] = [];
let clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const g of gws.splice(0)) await g.close();
  for (const c of children.splice(0)) await c.stop('SIGKILL');
});

const client = (url: string, id: string, extra: Partial<DeviceClientOptions> = {}): DeviceClient => sdkDevice(url, id, clients, { backoffMaxMs: 500, batchMs: 0, ...extra });

/** Sends reading i (value i, time BASE_TIME + i) for i in [from, to), pausing `everyMs` × 10 every 10 readings. */
const send = (c: DeviceClient, from: number, to: number, everyMs: number, onEach?: (i: number) => void | Promise<void>): Promise<void> =>
  stream(c, from, to, BASE_TIME, { onEach, pauseMs: everyMs * 10 });

const values = (base: string, id: string, n: number): Promise<number[]> => historyValues(base, id, 0, BASE_TIME, n);

describe('DeviceClient with a real gateway', () => {
  it('delivers every reading once and ends with nothing unacked', async () => {
    const g = await startGateway({ ackInterval: 10 });
    gws.push(g);
    const c = client(g.ws, 'steady');
    await c.connect();
    await send(c, 0, 1000, 0);
    await c.close();
    expect(c.stats).toMatchObject({ unacked: 0, dropped: 0 });
    expect(c.stats.acked).toBe(c.stats.sent);
    expect(await values(g.http, 'steady', 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('loses and doubles nothing across a gateway restart, with storage that outlives the gateway', async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const storage = new MemoryStorage(100_000);
    const first = await startGateway({ port, dataDir, ackInterval: 10 }, { storage });
    const c = client(first.ws, 'survivor');
    await c.connect();
    let second: TestGateway | undefined;
    await send(c, 0, 3000, 1, async (i) => {
      if (i === 1000) await first.gateway.close();
      if (i === 1500) second = await startGateway({ port, dataDir, ackInterval: 10 }, { storage });
    });
    gws.push(second!);
    await c.close();
    expect(c.stats).toMatchObject({ unacked: 0, dropped: 0 });
    expect(c.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(await values(second!.http, 'survivor', 3000)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    // Exactly once across the two: the second knew from the cursor file what the first had ingested.
    const { body } = await second!.api('/api/devices/survivor');
    expect(first.gateway.devices.get('survivor')!.frames + body.counters.frames).toBe(3000);
  });

  it('after a SIGKILL mid-stream, the restarted gateway ingests exactly the frames not yet acked, once each', async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const args = gatewayArgs(dataDir, '--port', String(port), '--ack-interval', '10');
    const first = await spawnGateway(args);
    children.push(first);
    const N = 3000;
    const c = client(first.ws, 'crashy');
    await c.connect();
    let killedAfter = 0;
    let second: ChildGateway | undefined;
    await send(c, 0, N, 1, async (i) => {
      if (i === 1000) {
        await waitFor(async () => (await api(first.http, '/api/devices/crashy')).body.counters.frames >= 500, 'the first gateway to ingest 500 frames');
        killedAfter = (await api(first.http, '/api/devices/crashy')).body.counters.frames;
        await first.stop('SIGKILL');
      }
      if (i === 1600) {
        second = await spawnGateway(args);
        children.push(second);
      }
    });
    await c.close();
    expect(c.stats).toMatchObject({ unacked: 0, dropped: 0 });
    expect(c.stats.acked).toBe(N);

    const dev = (await api(second!.http, '/api/devices/crashy')).body;
    const got = await values(second!.http, 'crashy', N);
    // The killed gateway's memory is gone; what the second one holds must be one contiguous run up to
    // the last reading, with no value twice: everything before it was acked by the first gateway.
    const start = got[0]!;
    expect(got).toEqual(Array.from({ length: N - start }, (_, i) => start + i));
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(killedAfter + 600);
    expect(dev.counters.frames).toBe(N - start);
    expect(dev.counters.gaps).toBe(0);
  });
});
