/** Bridge mode against a real Mosquitto: gateways on one MQTT 5 shared subscription split the telemetry. */
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeTelemetry, ERROR_CODES, FrameType, type AckFrame } from '../../devices/codec/index.js';
import { DeviceClient } from '../../devices/sdk/index.js';
import { OPERATOR_TOKEN, startGateway, type TestGateway } from '../helpers/gateway.js';
import { LiveClient } from '../helpers/live-client.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;
let broker: Mosquitto | undefined;
const gateways: TestGateway[] = [];
const clients: mqtt.MqttClient[] = [];
const lives: LiveClient[] = [];
afterEach(async () => {
  for (const l of lives.splice(0)) l.close();
  for (const c of clients.splice(0)) c.end(true);
  for (const g of gateways.splice(0)) await g.close();
  await broker?.stop();
  broker = undefined;
});

describe.skipIf(!hasMosquitto)('bridge mode with Mosquitto', () => {
  it('two gateways on one shared subscription ingest 10,000 frames exactly once between them, and range-ack each', async () => {
    broker = await startMosquitto();
    for (let i = 0; i < 2; i++) gateways.push(await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'test-group', ackInterval: 10 }));
    // The cluster has formed once each gateway has heard the other join (each then tells the other
    // its summaries; no frame travels between them).
    await waitFor(() => gateways.every((g) => g.gateway.cluster!.backbone.peers.size === 1), 'the two gateways to see each other');
    const DEVICES = 10;
    const PER_DEVICE = 1000;
    const acked = new Map<string, Set<number>>();
    const devices = await Promise.all(
      Array.from({ length: DEVICES }, async (_, d) => {
        const id = `bridged-${d}`;
        const c = await mqtt.connectAsync(broker!.url, { clientId: id, protocolVersion: 5, reconnectPeriod: 0 });
        clients.push(c);
        const seen = new Set<number>();
        acked.set(id, seen);
        c.on('message', (_t, payload) => {
          const f = decodeFrame(new Uint8Array(payload));
          if (f instanceof Error || f.type !== FrameType.Ack) return;
          const a = f as AckFrame;
          for (let s = a.firstSeq ?? a.seq; s <= a.seq; s++) seen.add(s);
        });
        await c.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
        return { id, c };
      }),
    );
    await Promise.all(
      devices.map(async ({ id, c }) => {
        for (let s = 0; s < PER_DEVICE; s++) {
          c.publish(`devices/${id}/telemetry`, Buffer.from(encodeTelemetry({ epoch: 1, seq: s, timestamp: 1_700_000_000_000 + s }, [{ channel: 0, value: s }])), { qos: 1 });
          if (s % 100 === 99) await new Promise((r) => setImmediate(r));
        }
      }),
    );
    const total = DEVICES * PER_DEVICE;
    await waitFor(() => gateways.reduce((n, g) => n + g.gateway.ingest.stats.frames, 0) >= total, `${total} frames ingested`, 30_000, 50);
    const [a, b] = gateways.map((g) => g.gateway.ingest.stats);
    expect(a!.frames + b!.frames).toBe(total);
    expect(a!.duplicates + b!.duplicates).toBe(0);
    expect(a!.frames).toBeGreaterThan(total / 10);
    expect(b!.frames).toBeGreaterThan(total / 10);
    expect(a!.errors + b!.errors).toBe(0);
    // Every device got an ack for every seq, from whichever gateway took it.
    await waitFor(() => [...acked.values()].every((s) => s.size === PER_DEVICE), 'every seq acked', 10_000);
    // The two form a cluster: each shows every frame of every device, whichever of them took it
    // (its own share plus the other's, from the other's summaries).
    const shown = async (g: TestGateway) => ((await g.api('/api/devices')).body.devices as { id: string; counters: { frames: number } }[]).filter((d) => d.id.startsWith('bridged-') && d.counters.frames === PER_DEVICE).length;
    await waitFor(async () => (await shown(gateways[0]!)) === DEVICES && (await shown(gateways[1]!)) === DEVICES, 'both gateways to show all frames of every device');
    for (const g of gateways) {
      const dev = (await g.api('/api/devices/bridged-0')).body;
      expect(dev).toMatchObject({ online: true, transport: 'mqtt', instance: null, counters: { frames: PER_DEVICE, readings: PER_DEVICE, duplicates: 0, gaps: 0 }, last: { '0': { value: PER_DEVICE - 1 } } });
    }
  });

  it("a dashboard on one gateway follows a bridged device live with every point, whichever gateway took it", async () => {
    broker = await startMosquitto();
    // Every point shown (no min/max downsampling), so the test can count them.
    for (let i = 0; i < 2; i++) gateways.push(await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'live-group', liveMaxPoints: 10_000 }));
    await waitFor(() => gateways.every((g) => g.gateway.cluster!.backbone.peers.size === 1), 'the two gateways to see each other');
    const [g0, g1] = gateways as [TestGateway, TestGateway];
    const id = 'bridged-live';
    const live = await LiveClient.connect(g0.ws, OPERATOR_TOKEN);
    lives.push(live);
    await live.waitFor((m) => m.type === 'hello', 'hello');
    live.send({ op: 'subscribe', streams: [`device:${id}`] });
    const c = await mqtt.connectAsync(broker.url, { clientId: id, protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    const publish = (seq: number, value: number) => c.publish(`devices/${id}/telemetry`, Buffer.from(encodeTelemetry({ epoch: 1, seq, timestamp: 1_700_000_000_000 + seq }, [{ channel: 0, value }])), { qos: 1 });
    // Probes until the other gateway has relayed points of the device: g0's interest has reached it.
    let seq = 0;
    await waitFor(() => {
      publish(seq++, -1);
      return g1.gateway.cluster!.relay.sent > 0;
    }, 'the other gateway to relay the points it took', 10_000, 50);
    const N = 300;
    for (let i = 0; i < N; i++) publish(seq++, i);
    const values = () => live.messages.filter((m) => m.type === 'device' && m.id === id).flatMap((m) => ((m.points['0'] ?? []) as [number, number][]).map((p) => p[1]).filter((v) => v >= 0));
    await waitFor(() => values().length >= N, `the ${N} points on the dashboard`);
    await new Promise((r) => setTimeout(r, 300));
    expect([...values()].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i));
    // Both took some: the view joined both shares.
    expect(g0.gateway.ingest.stats.frames).toBeGreaterThan(N / 10);
    expect(g1.gateway.ingest.stats.frames).toBeGreaterThan(N / 10);
  });

  it('answers a bad frame through the broker with an error frame, counts it for the bridge, and keeps the device', async () => {
    broker = await startMosquitto();
    const g = await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'bad-frame-group' });
    gateways.push(g);
    const c = await mqtt.connectAsync(broker.url, { clientId: 'bridged-bad', protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    const errors: number[] = [];
    c.on('message', (_t, payload) => {
      const f = decodeFrame(new Uint8Array(payload));
      if (!(f instanceof Error) && f.type === FrameType.Error) errors.push(f.code);
    });
    await c.subscribeAsync('devices/bridged-bad/commands', { qos: 1 });
    await c.publishAsync('devices/bridged-bad/telemetry', Buffer.from([1, 2, 3]), { qos: 1 });
    await waitFor(() => errors.length > 0, 'the error frame');
    expect(errors).toEqual([ERROR_CODES.FRAME_TRUNCATED]);
    expect(g.gateway.sessions.refusals.get('FRAME_TRUNCATED', 'bridge')).toBe(1);
    expect((await g.api('/api/devices/bridged-bad')).body).toMatchObject({ online: true, lastError: 'FRAME_TRUNCATED', counters: { errors: 1 } });
  });

  it('relays a result that the shared subscription gave to the other gateway to the one owning the command', async () => {
    broker = await startMosquitto();
    for (let i = 0; i < 2; i++) gateways.push(await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'test-group' }));
    const dev = new DeviceClient({ url: broker.url, deviceId: 'bridged-cmd', token: 'unused-by-this-broker', backoffInitialMs: 50, backoffMaxMs: 300 });
    dev.on('error', () => {});
    dev.onCommand('blink', (args) => ({ blinked: args }));
    await dev.connect();
    // The gateways learn of a bridged device from its traffic.
    dev.send([{ channel: 0, value: 1 }]);
    await waitFor(async () => (await gateways[0]!.api('/api/devices/bridged-cmd')).body?.online === true, 'the owner to see the device');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await gateways[0]!.api('/api/devices/bridged-cmd/commands', { method: 'POST', body: JSON.stringify({ name: 'blink', args: i }) });
      expect(r.status).toBe(201);
      ids.push(r.body.id);
    }
    const states = async () => Promise.all(ids.map(async (id) => (await gateways[0]!.api(`/api/commands/${id}`)).body.state as string));
    await waitFor(async () => (await states()).every((s) => s === 'acked'), 'all 20 commands acked on the owner', 15_000);
    // Both gateways took some of the results (delivery receipts and results): the split happened.
    const relayed = gateways.map((g) => g.gateway.cluster!.backbone.resultsRelayed);
    expect(relayed[1]).toBeGreaterThan(0);
    // The other gateway answers for the commands too.
    await waitFor(async () => (await gateways[1]!.api(`/api/commands/${ids[19]}`)).body?.state === 'acked', 'the other gateway to show the last command acked');
    expect((await gateways[1]!.api(`/api/commands/${ids[19]}`)).body).toMatchObject({ state: 'acked', result: { blinked: 19 }, owner: gateways[0]!.gateway.cluster!.backbone.instance });
    await dev.close();
  });

  it('refuses to start when the broker cannot be reached, naming the setting', async () => {
    await expect(startGateway({ mqttUrl: 'mqtt://127.0.0.1:1' })).rejects.toThrow(/--mqtt-url/);
  });

  it('logs a broker outage once, not at every reconnect attempt, and says when the bridge and the cluster backbone are back', async () => {
    // A warning a second per client for as long as the broker was away buried everything else.
    broker = await startMosquitto();
    const lines: { level: number; msg: string; attempts?: number }[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
        done();
      },
    });
    const g = await startGateway({ mqttUrl: broker.url, logLevel: 'info' }, { log: pino({ level: 'info' }, stream) });
    gateways.push(g);
    const client = (g.gateway as unknown as { bridge: { client: mqtt.MqttClient } }).bridge.client;
    let attempts = 0;
    client.on('reconnect', () => attempts++);
    const port = broker.port;
    await broker.stop();
    broker = undefined;
    await waitFor(() => attempts >= 4, 'four reconnect attempts of the bridge', 20_000);
    broker = await startMosquitto(port);
    await waitFor(() => lines.find((l) => l.msg.startsWith('MQTT bridge connected again')), 'the bridge to say it is back', 20_000);
    const bridgeLines = lines.filter((l) => l.msg.startsWith('MQTT bridge'));
    expect(bridgeLines.filter((l) => l.level >= 40).length).toBeLessThanOrEqual(2);
    expect(bridgeLines.at(-1)!.attempts).toBeGreaterThanOrEqual(4);
    // The cluster backbone (on the same broker in bridge mode) the same way.
    await waitFor(() => lines.find((l) => l.msg.startsWith('cluster backbone reached its broker again')), 'the backbone to say it is back', 20_000);
    expect(lines.filter((l) => l.level >= 40 && l.msg.startsWith('cluster backbone')).length).toBeLessThanOrEqual(2);
  });
});
