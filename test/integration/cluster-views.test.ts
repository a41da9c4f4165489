/**
 * What each instance of a cluster shows without seeing another's frames (real gateway processes on
 * a real Mosquitto): a live view that follows a device across a move with no gap and no doubled
 * point, history of another instance's device (memory store: asked of it; the documented error when
 * it is gone), and the whole fleet with its counters on every instance.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { RawDevice } from '../helpers/raw-device.js';
import { api, deviceToken, gatewayArgs, OPERATOR_TOKEN, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { LiveClient } from '../helpers/live-client.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;
let broker: Mosquitto | undefined;
const gateways: ChildGateway[] = [];
const raws: RawDevice[] = [];
const lives: LiveClient[] = [];
let influxd: Influxd | undefined;

afterEach(async () => {
  for (const l of lives.splice(0)) l.ws.close();
  for (const d of raws.splice(0)) d.terminate();
  for (const g of gateways.splice(0)) await g.stop();
  await broker?.stop();
  broker = undefined;
  await influxd?.destroy();
  influxd = undefined;
});

async function instance(name: string, extra: string[] = []): Promise<ChildGateway> {
  // Every point shown (no min/max downsampling), so a test can count them.
  const g = await spawnGateway(gatewayArgs(tempDir(`views-${name}-`), '--cluster-url', broker!.url, '--instance-id', name, '--mqtt-share-group', 'views-test', '--cluster-summary-ms', '200', '--live-max-points', '1000', ...extra));
  gateways.push(g);
  return g;
}

async function raw(g: ChildGateway, id: string): Promise<RawDevice> {
  const d = await RawDevice.connect(g.ws, id, deviceToken(id));
  raws.push(d);
  return d;
}

const T0 = 1_700_000_000_000;
const frame = (seq: number) => encodeTelemetry({ epoch: 3, seq, timestamp: T0 + seq }, [{ channel: 1, value: seq }]);

/** Values of channel 1 in the device messages a live client got, in arrival order, and their seqs. */
function received(live: LiveClient, id: string): { values: number[]; seqs: number[] } {
  const msgs = live.messages.filter((m) => m.type === 'device' && m.id === id);
  return { values: msgs.flatMap((m) => ((m.points['1'] ?? []) as [number, number][]).map((p) => p[1])), seqs: msgs.map((m) => m.seq as number) };
}

describe.skipIf(!hasMosquitto)('what every instance of a cluster shows', () => {
  it('a dashboard on B follows a device on A live, across its move to B, with no gap and no doubled point', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    const id = 'climate-0300';
    const live = await LiveClient.connect(b.ws, OPERATOR_TOKEN);
    lives.push(live);
    await live.waitFor((m) => m.type === 'hello', 'hello');
    live.send({ op: 'subscribe', streams: [`device:${id}`] });

    // On A: frames until B's client gets the first relayed point (B's interest has reached A).
    const onA = await raw(a, id);
    let seq = 0;
    await waitFor(() => {
      onA.send(frame(seq++));
      return received(live, id).values.length > 0;
    }, "A's points to reach the dashboard on B", 10_000, 50);
    const first = received(live, id).values[0]!;
    for (let i = 0; i < 10; i++) onA.send(frame(seq++));
    await onA.waitAck(3, seq - 1);
    // Five more that A takes but the device does not wait to see acked: it moves to B at once.
    for (let i = 0; i < 5; i++) onA.send(frame(seq++));
    const onB = await raw(b, id);
    // It resends everything since the last ack it saw (10 frames A had acked, 5 it may not have), then goes on.
    const resendFrom = seq - 15;
    for (let s = resendFrom; s < seq + 20; s++) onB.send(frame(s));
    const last = seq + 19;
    await onB.waitAck(3, last, 10_000);
    await waitFor(() => received(live, id).values.includes(last), 'the last point on the dashboard on B');
    await new Promise((r) => setTimeout(r, 300));

    const { values, seqs } = received(live, id);
    // Every point from the first one shown to the last, each exactly once (replays are not shown again).
    expect([...values].sort((x, y) => x - y)).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
    // The messages are numbered without a gap: nothing to repair.
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    expect(live.of('missed')).toEqual([]);
    // B took the moved device's frames as replays where A had them, and counts add up on both.
    for (const g of [a, b]) {
      await waitFor(async () => (await api(g.http, `/api/devices/${id}`)).body?.counters?.frames === last + 1, `the counters on ${g.http} to add up to ${last + 1} frames`);
    }
  });

  it('a resume on B across a time nobody on B followed the device on A answers too_old (the points A sent meanwhile never came)', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    const id = 'climate-0301';
    const live = await LiveClient.connect(b.ws, OPERATOR_TOKEN);
    lives.push(live);
    const hello = await live.waitFor((m) => m.type === 'hello', 'hello');
    live.send({ op: 'subscribe', streams: [`device:${id}`] });
    const onA = await raw(a, id);
    let seq = 0;
    await waitFor(() => {
      onA.send(frame(seq++));
      return received(live, id).seqs.length > 0;
    }, "A's points on B", 10_000, 50);
    await new Promise((r) => setTimeout(r, 300));
    const lastSeq = Math.max(...received(live, id).seqs);
    // The last viewer on B leaves: B stops following the device, A stops sending its points.
    live.send({ op: 'unsubscribe', streams: [`device:${id}`] });
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 5; i++) onA.send(frame(seq++));
    await onA.waitAck(3, seq - 1);
    live.send({ op: 'subscribe', streams: [`device:${id}`], resume: { [`device:${id}`]: lastSeq }, bootId: hello.bootId });
    const answer = await live.waitFor((m) => m.type === 'resume', 'the resume answer');
    expect(answer).toMatchObject({ stream: `device:${id}`, from: lastSeq, status: 'too_old' });
  });

  it('a device that reconnects to the same instance (replacing its old connection) stays online everywhere, also for an instance that joins later', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    const id = 'power-0302';
    const first = await raw(a, id);
    first.send(frame(0));
    await first.waitAck(3, 0);
    const second = await raw(a, id);
    expect((await first.closed).code).toBe(4409);
    second.send(frame(1));
    await second.waitAck(3, 1);
    await new Promise((r) => setTimeout(r, 300));
    expect((await api(b.http, `/api/devices/${id}`)).body).toMatchObject({ online: true, instance: 'gw-a' });
    // The retained presence says so too.
    const c = await instance('gw-c');
    await waitFor(async () => (await api(c.http, `/api/devices/${id}`)).status === 200, 'C to hear of the device');
    await new Promise((r) => setTimeout(r, 300));
    expect((await api(c.http, `/api/devices/${id}`)).body).toMatchObject({ online: true, instance: 'gw-a' });
  });

  it('answers history of a device on A from B (memory store: asked of A), and says so when A is gone', async () => {
    broker = await startMosquitto();
    const a = await instance('gw-a');
    const b = await instance('gw-b');
    const id = 'power-0300';
    const onA = await raw(a, id);
    for (let s = 0; s < 10; s++) onA.send(frame(s));
    await onA.waitAck(3, 9);
    await waitFor(async () => (await api(b.http, `/api/devices/${id}`)).body?.online === true, 'B to know the device');
    const path = `/api/devices/${id}/history?channel=1&from=${T0 - 1000}&to=${T0 + 1000}&points=100`;
    const h = await api(b.http, path);
    expect(h.status).toBe(200);
    expect(h.body.points.map((p: { mean: number }) => p.mean)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    await a.stop('SIGKILL');
    gateways.splice(gateways.indexOf(a), 1);
    await waitFor(async () => (await api(b.http, `/api/devices/${id}`)).body?.online === false, 'B to see A gone', 15_000);
    const gone = await api(b.http, path);
    expect(gone.status).toBe(503);
    expect(gone.body.error.code).toBe('HISTORY_OWNER_UNAVAILABLE');
    expect(gone.body.error.message).toContain('gw-a');
  });

  it.skipIf(influxdPath() === undefined)('answers history of a device on A from B out of InfluxDB, also once A is gone', async () => {
    broker = await startMosquitto();
    influxd = await startInfluxd();
    const db = `views_${process.pid}`;
    const a = await instance('gw-a', ['--influx', `${influxd.url}/${db}`, '--influx-retention', 'INF']);
    const b = await instance('gw-b', ['--influx', `${influxd.url}/${db}`, '--influx-retention', 'INF']);
    const id = 'power-0303';
    const onA = await raw(a, id);
    for (let s = 0; s < 10; s++) onA.send(frame(s));
    await onA.waitAck(3, 9);
    await a.stop('SIGKILL');
    gateways.splice(gateways.indexOf(a), 1);
    await waitFor(async () => (await api(b.http, `/api/devices/${id}`)).body?.online === false, 'B to see A gone', 15_000);
    const h = await api(b.http, `/api/devices/${id}/history?channel=1&from=${T0 - 1000}&to=${T0 + 1000}&points=100`);
    expect(h.status).toBe(200);
    expect(h.body.points.map((p: { mean: number }) => p.mean)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('lists the whole fleet with its counters and last values on every instance', async () => {
    broker = await startMosquitto();
    const gws = [await instance('gw-a'), await instance('gw-b'), await instance('gw-c')];
    const expected = new Map<string, number>();
    for (const [i, g] of gws.entries()) {
      for (let k = 0; k < 3; k++) {
        const id = `vibration-${i}${k}00`;
        const d = await raw(g, id);
        const n = 5 + i * 3 + k;
        for (let s = 0; s < n; s++) d.send(frame(s));
        await d.waitAck(3, n - 1);
        expected.set(id, n);
      }
    }
    for (const g of gws) {
      const list = await waitFor(async () => {
        const ds = (await api(g.http, '/api/devices')).body.devices as { id: string; online: boolean; counters: { frames: number }; last: Record<string, { value: number }> }[];
        const ok = [...expected].every(([id, n]) => ds.find((d) => d.id === id)?.counters.frames === n);
        return ok ? ds : undefined;
      }, `every device with its counters on ${g.http}`);
      for (const [id, n] of expected) expect(list.find((d) => d.id === id)).toMatchObject({ online: true, counters: { frames: n, readings: n, duplicates: 0 }, last: { '1': { value: n - 1 } } });
    }
  });
});
