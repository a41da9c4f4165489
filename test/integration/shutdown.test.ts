/** Graceful shutdown: SIGTERM under load exits 0, in bounded time, and loses no reading it acked. */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { deviceToken, gatewayArgs, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';

const BASE = 1_700_000_000_000;
let influxd: Influxd | undefined;
let child: ChildGateway | undefined;
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await child?.stop('SIGKILL');
  child = undefined;
  await influxd?.destroy();
  influxd = undefined;
});

describe.skipIf(influxdPath() === undefined)('SIGTERM', () => {
  it('under load: exit 0 within the bound, devices told 1001, and every acked reading is in InfluxDB', async () => {
    influxd = await startInfluxd();
    const db = 'shutdown';
    child = await spawnGateway(gatewayArgs(tempDir(),
      '--influx', `${influxd.url}/${db}`, '--influx-retention', 'INF', '--ack-interval', '20'));
    const devices = ['climate-0001', 'climate-0002', 'climate-0003'].map((id) => {
      const c = new DeviceClient({ url: child!.ws, deviceId: id, token: deviceToken(id), batchMs: 0, maxReadingsPerFrame: 1, reconnect: false });
      c.on('error', () => {});
      clients.push(c);
      return c;
    });
    // One reading per frame, so a frame's seq is its reading's index: the highest acked seq says
    // exactly which readings the gateway promised to have stored.
    const ackedUpTo = new Map<DeviceClient, number>();
    const closeCodes = new Map<DeviceClient, number>();
    for (const c of devices) {
      c.on('acked', (a) => ackedUpTo.set(c, Math.max(ackedUpTo.get(c) ?? -1, a.seq)));
      c.on('disconnected', (e) => closeCodes.set(c, e.code));
    }
    await Promise.all(devices.map((c) => c.connect()));
    let i = 0;
    let stopping: Promise<number | null> | undefined;
    let stoppedIn = 0;
    const start = Date.now();
    // Send until the gateway has gone and every device has been told (bounded: 20 s, 200k readings).
    while ((!stopping || closeCodes.size < devices.length) && Date.now() - start < 20_000 && i < 200_000) {
      for (const c of devices) c.send({ channel: 1, value: i }, BASE + i);
      i++;
      if (i % 5 === 0) await new Promise((r) => setTimeout(r, 1));
      if (!stopping && Date.now() - start > 1500) {
        const t = Date.now();
        stopping = child.stop('SIGTERM').then((code) => ((stoppedIn = Date.now() - t), code));
      }
    }
    expect(await stopping).toBe(0);
    expect(stoppedIn).toBeLessThan(10_000);
    for (const c of devices) expect(closeCodes.get(c)).toBe(1001);
    for (const c of devices) {
      const upTo = ackedUpTo.get(c) ?? -1;
      expect(upTo).toBeGreaterThan(100);
      const r = await influxd.query(`SELECT count("c1") FROM "gateway"."telemetry" WHERE "device" = '${c.deviceId}' AND time <= ${(BASE + upTo) * 1_000_000}`, db);
      expect(r.results[0].series[0].values[0][1], `readings 0..${upTo} of ${c.deviceId}`).toBe(upTo + 1);
    }
  });
});
