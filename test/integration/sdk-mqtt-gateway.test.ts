/** The device SDK over MQTT against the gateway's embedded broker. */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { MemoryStorage } from '../../gateway/storage/memory.js';
import { sdkDevice } from '../helpers/devices.js';
import { historyValues, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const BASE_TIME = 1_700_000_000_000;
const gws: TestGateway[] = [];
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const g of gws.splice(0)) await g.close();
});

const client = (url: string, id: string): DeviceClient => sdkDevice(url, id, clients, { backoffMaxMs: 500, batchMs: 0 });

describe('DeviceClient over MQTT with the gateway', () => {
  it('keeps streaming while the gateway and its broker restart, with no reading lost or doubled', async () => {
    const [port, mqttPort] = [await freePort(), await freePort()];
    const dataDir = tempDir();
    const storage = new MemoryStorage(100_000);
    const cfg = { port, mqttPort, dataDir, ackInterval: 10 };
    const first = await startGateway(cfg, { storage });
    const c = client(`mqtt://127.0.0.1:${mqttPort}`, 'mq-survivor');
    await c.connect();
    let second: TestGateway | undefined;
    const N = 2000;
    for (let i = 0; i < N; i++) {
      c.send({ channel: 0, value: i }, BASE_TIME + i);
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 10));
      if (i === 700) await first.gateway.close();
      if (i === 1000) second = await startGateway(cfg, { storage });
    }
    gws.push(second!);
    await c.close();
    expect(c.stats).toMatchObject({ unacked: 0, dropped: 0 });
    expect(c.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(await historyValues(second!.http, 'mq-survivor', 0, BASE_TIME, N)).toEqual(Array.from({ length: N }, (_, i) => i));
    // Exactly once across the two gateways (readings, as the SDK packs several per frame).
    const readings = first.gateway.devices.get('mq-survivor')!.readings + (await second!.api('/api/devices/mq-survivor')).body.counters.readings;
    expect(readings).toBe(N);
  });

  it('replaces an older MQTT connection of the same device without the two fighting', async () => {
    const g = await startGateway({ mqttPort: await freePort() });
    gws.push(g);
    const url = `mqtt://127.0.0.1:${g.gateway.mqttPort}`;
    const first = client(url, 'mq-twin');
    const stopped = new Promise<{ code: number; willReconnect: boolean }>((resolve) => first.on('disconnected', (e) => resolve(e)));
    await first.connect();
    const second = client(url, 'mq-twin');
    await second.connect();
    const e = await stopped;
    expect(e).toMatchObject({ code: 4409, willReconnect: false });
    // Give a would-be reconnect loop time to show itself.
    await new Promise((r) => setTimeout(r, 1000));
    const { body } = await g.api('/api/devices/mq-twin');
    expect(body).toMatchObject({ online: true, counters: { connections: 2 } });
    second.send({ channel: 1, value: 1 });
    await waitFor(() => second.stats.acked === 1, 'the second connection to be acked');
  });
});
