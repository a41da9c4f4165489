/**
 * The gateway with InfluxDB (a real Debian influxd on a free port): no reading lost or doubled when
 * the database stops under load, a killed gateway's spill drained after a restart, and the history
 * API answered by InfluxQL buckets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { api, deviceToken, FLEET_KEY, OPERATOR_TOKEN, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const hasInfluxd = influxdPath() !== undefined;
const BASE = 1_700_000_000_000;
let influxd: Influxd | undefined;
const gws: TestGateway[] = [];
const children: ChildGateway[] = [];
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const g of gws.splice(0)) await g.close();
  for (const c of children.splice(0)) await c.stop('SIGKILL');
  influxd?.resume();
  await influxd?.destroy();
  influxd = undefined;
});

function device(url: string, id: string): DeviceClient {
  const c = new DeviceClient({ url, deviceId: id, token: deviceToken(id), backoffInitialMs: 50, backoffMaxMs: 500, batchMs: 10, closeTimeoutMs: 30_000 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

async function count(db: string, id: string): Promise<number> {
  const r = await influxd!.query(`SELECT count("c1") FROM "gateway"."telemetry" WHERE "device" = '${id}'`, db);
  return (r.results?.[0]?.series?.[0]?.values?.[0]?.[1] as number | undefined) ?? 0;
}

describe.skipIf(!hasInfluxd)('gateway with InfluxDB', () => {
  it('loses and doubles nothing while influxd is frozen, then killed and restarted, under load', { timeout: 90_000 }, async () => {
    influxd = await startInfluxd();
    const db = 'outage';
    const g = await startGateway({ influx: `${influxd.url}/${db}`, influxRetention: 'INF', storageBufferPoints: 2000, ackInterval: 20 });
    gws.push(g);
    const ids = ['climate-0001', 'climate-0002', 'power-0001'];
    const devs = ids.map((id) => device(g.ws, id));
    await Promise.all(devs.map((d) => d.connect()));
    // Load for 14 s; influxd frozen at 2 s (SIGSTOP), killed at 7 s, restarted at 12 s: ten seconds without it.
    let degradedSeen = false;
    let N = 0;
    const start = Date.now();
    const phases = [
      { at: 2000, run: async () => influxd!.pause() },
      {
        at: 7000,
        run: async () => {
          degradedSeen = JSON.stringify(await (await fetch(`${g.http}/readyz`)).json()).includes('degraded');
          await influxd!.kill();
        },
      },
      { at: 12_000, run: async () => influxd!.restart() },
    ];
    while (Date.now() - start < 14_000 && N < 20_000) {
      for (const d of devs) d.send({ channel: 1, value: N }, BASE + N);
      N++;
      if (N % 10 === 0) await new Promise((r) => setTimeout(r, 10));
      if (phases[0] && Date.now() - start >= phases[0].at) await phases.shift()!.run();
    }
    expect(phases).toEqual([]);
    for (const d of devs) await d.close();
    for (const d of devs) expect(d.stats).toMatchObject({ unacked: 0, dropped: 0 });
    expect(degradedSeen).toBe(true);
    await waitFor(async () => (await Promise.all(ids.map((id) => count(db, id)))).every((n) => n === N), `${N} points per device in InfluxDB`, 30_000, 250);
    // Exactly once: also the sum of values matches.
    const r = await influxd.query(`SELECT sum("c1") FROM "gateway"."telemetry" WHERE "device" = 'climate-0001'`, db);
    expect(r.results[0].series[0].values[0][1]).toBe((N * (N - 1)) / 2);
    expect(g.gateway.storage.health()).toMatchObject({ lost: 0, refused: 0 });
  });

  it('drains the spill of a gateway that was killed, after it restarts', async () => {
    influxd = await startInfluxd();
    const db = 'spilled';
    const [port, dataDir] = [await freePort(), tempDir()];
    const args = ['--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN,
      '--influx', `${influxd.url}/${db}`, '--influx-retention', 'INF', '--storage-buffer-points', '100'];
    const first = await spawnGateway(args);
    children.push(first);
    // Let the gateway create the database, then take influxd away.
    await waitFor(async () => JSON.stringify((await influxd!.query('SHOW DATABASES')).results).includes(db), 'the database to exist');
    influxd.pause();
    const d = device(first.ws, 'climate-0009');
    await d.connect();
    const N = 2000;
    for (let i = 0; i < N; i++) {
      d.send({ channel: 1, value: i }, BASE + i);
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    // Acked means spilled (InfluxDB is frozen): wait until the device holds nothing unacked.
    await waitFor(() => d.stats.unacked === 0 && d.stats.pendingReadings === 0, 'everything acked from the spill', 20_000);
    const metrics = await (await fetch(`${first.http}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_storage_spilled_points [1-9]/m);
    await first.stop('SIGKILL');
    await d.close().catch(() => {});
    influxd.resume();
    const second = await spawnGateway(args);
    children.push(second);
    await waitFor(async () => (await count(db, 'climate-0009')) === N, `${N} points drained from the spill`, 30_000, 250);
  });

  it('answers history from InfluxDB in at most `points` buckets, and replays make no duplicates', async () => {
    influxd = await startInfluxd();
    const db = 'history';
    const g = await startGateway({ influx: `${influxd.url}/${db}`, influxRetention: 'INF', ackInterval: 10 });
    gws.push(g);
    // A day of readings at one per minute, sent as fast as possible, then the same frames again.
    const d = device(g.ws, 'climate-0100');
    await d.connect();
    const DAY = 24 * 60;
    for (let m = 0; m < DAY; m++) d.send({ channel: 1, value: m % 100 }, BASE + m * 60_000);
    await waitFor(() => d.stats.unacked === 0 && d.stats.pendingReadings === 0, 'a day acked', 20_000);
    await waitFor(async () => (await count(db, 'climate-0100')) === DAY, 'a day in InfluxDB', 20_000);
    const replay = device(g.ws, 'climate-0100');
    await replay.connect();
    for (let m = 0; m < DAY; m++) replay.send({ channel: 1, value: m % 100 }, BASE + m * 60_000);
    await waitFor(() => replay.stats.unacked === 0 && replay.stats.pendingReadings === 0, 'the replay acked', 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(await count(db, 'climate-0100')).toBe(DAY);
    const { status, body } = await api(g.http, `/api/devices/climate-0100/history?channel=1&from=${BASE}&to=${BASE + DAY * 60_000 - 1}&points=48`);
    expect(status).toBe(200);
    expect(body.points.length).toBeLessThanOrEqual(48);
    expect(body.points.length).toBeGreaterThan(40);
    const total = body.points.reduce((n: number, p: { count: number }) => n + p.count, 0);
    expect(total).toBe(DAY);
    for (const p of body.points) {
      expect(p.min).toBeLessThanOrEqual(p.mean);
      expect(p.mean).toBeLessThanOrEqual(p.max);
    }
  });
});
