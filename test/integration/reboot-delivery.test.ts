/**
 * Issue 15 point 1 with the SDK and a real gateway: frames a device kept across a reboot are resent
 * with their old epoch right before the new boot's first frame, and acks of their own epoch free them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { sdkDevice } from '../helpers/devices.js';
import { historyValues, startGateway, type TestGateway } from '../helpers/gateway.js';

let gws: TestGateway[] = [];
let clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const g of gws.splice(0)) await g.close();
});

describe('a device that keeps unacked frames across a reboot', () => {
  it('gets them acked by their own epoch and freed, with the new boot following at once', async () => {
    const g = await startGateway({ ackInterval: 50 });
    gws.push(g);
    const t0 = Date.now() - 10_000;
    // Before the reboot: three frames sealed while offline, taken out as the device would write them to flash.
    const before = sdkDevice(g.ws, 'rebooter', clients, { epoch: 1111, batchMs: 0, closeTimeoutMs: 0 });
    for (let i = 0; i < 3; i++) {
      before.send({ channel: 0, value: i }, t0 + i);
      await new Promise((r) => setImmediate(r));
    }
    const kept = before.unackedFrames();
    expect(kept).toHaveLength(3);
    await before.close();
    clients.splice(0);

    // After the reboot: the new boot's first frame is sealed before the connection opens, so it goes out
    // in the same burst as the resent ones, inside one ack interval.
    const after = sdkDevice(g.ws, 'rebooter', clients, { epoch: 2222, batchMs: 0, keptFrames: kept, closeTimeoutMs: 3000 });
    const ackedEpochs: number[] = [];
    after.on('acked', (e) => ackedEpochs.push(e.epoch));
    after.send({ channel: 0, value: 3 }, t0 + 3);
    await new Promise((r) => setImmediate(r));
    expect(after.stats.unacked).toBe(4);
    await after.connect();
    await after.close();
    expect(after.stats).toMatchObject({ unacked: 0, acked: 4, resent: 3 });
    expect(after.unackedFrames()).toEqual([]);
    expect(new Set(ackedEpochs)).toEqual(new Set([1111, 2222]));
    expect(await historyValues(g.http, 'rebooter', 0, t0, 4)).toEqual([0, 1, 2, 3]);
  });
});
