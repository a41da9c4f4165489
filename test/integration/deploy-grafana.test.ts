/**
 * The Grafana files against the schema the gateway really writes: a gateway stores readings of two
 * devices in a real influxd, then every query of deploy/grafana's dashboard (its variables filled in
 * as Grafana would) and the README's query to paste are run there and must find those readings.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { readmeBlock } from '../helpers/readme.js';
import { fleetToken } from '../../devices/token.js';
import { once } from '../helpers/wait.js';

const hasInfluxd = influxdPath() !== undefined;
const DB = 'telemetry';
let influxd: Influxd | undefined;
let gw: TestGateway | undefined;
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await gw?.close();
  gw = undefined;
  await influxd?.destroy();
  influxd = undefined;
});

/** Grafana's interpolation for the dashboard's variables: all devices, channel c1, the last hour. */
function asGrafana(query: string, device = '.*'): string {
  return query
    .replaceAll('$channel', 'c1')
    .replaceAll('$device', device)
    .replaceAll('$timeFilter', 'time > now() - 1h')
    .replaceAll('$__interval', '10s');
}

function rows(answer: any): { tags?: Record<string, string>; columns: string[]; values: unknown[][] }[] {
  const result = answer.results?.[0];
  if (result?.error) throw new Error(result.error);
  return result?.series ?? [];
}

describe.skipIf(!hasInfluxd)('deploy/grafana and the README query, against the schema the gateway writes', () => {
  it('find the readings a gateway stored', async () => {
    influxd = await startInfluxd();
    gw = await startGateway({ influx: `${influxd.url}/${DB}`, fleetKey: 'my-fleet-secret' });
    for (const [id, value] of [['greenhouse-1', 21.5], ['greenhouse-2', 19.25]] as const) {
      const c = new DeviceClient({ url: gw.ws, deviceId: id, token: fleetToken('my-fleet-secret', id), batchMs: 5 });
      c.on('error', () => {});
      clients.push(c);
      await c.connect();
      const acked = once(c, 'acked', 20_000);
      c.send([{ channel: 1, value, type: 'f32' }, { channel: 2, value: true }]);
      // An ack with InfluxDB means the point is in the database (README: Acks wait for durable storage).
      await acked;
    }

    const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/dashboards/telemetry-gateway.json', import.meta.url), 'utf8'));
    const [deviceVar, channelVar] = dashboard.templating.list;
    expect(rows(await influxd.query(deviceVar.query, DB))[0]!.values.map((v) => v[1])).toEqual(['greenhouse-1', 'greenhouse-2']);
    expect(rows(await influxd.query(channelVar.query, DB))[0]!.values.map((v) => v[0])).toEqual(['c1', 'c2']);

    const [chart, table] = dashboard.panels.map((p: { targets: { query: string }[] }) => p.targets[0]!.query);
    const lines = rows(await influxd.query(asGrafana(chart), DB));
    expect(lines.map((s) => [s.tags?.device, s.values.find((v) => v[1] !== null)?.[1]])).toEqual([
      ['greenhouse-1', 21.5],
      ['greenhouse-2', 19.25],
    ]);
    const last = rows(await influxd.query(asGrafana(table), DB));
    expect(last.map((s) => [s.tags?.device, s.columns.slice(1), s.values[0]!.slice(1)])).toEqual([
      ['greenhouse-1', ['last_c1', 'last_c2'], [21.5, 1]],
      ['greenhouse-2', ['last_c1', 'last_c2'], [19.25, 1]],
    ]);

    const pasted = rows(await influxd.query(asGrafana(readmeBlock('grafana-query').trim()), DB));
    expect(pasted).toHaveLength(1);
    expect(pasted[0]!.values.map((v) => v[1])).toEqual([21.5]);
  });
});
