/**
 * Graceful shutdown: SIGTERM under load exits 0, in bounded time, and loses no reading it acked; and
 * every frame a device sent just before the signal is acked before the 1001 close.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry, FrameType, type AckFrame } from '../../devices/codec/index.js';
import { DeviceClient } from '../../devices/sdk/index.js';
import { deviceToken, gatewayArgs, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { influxdPath, startInfluxd, type Influxd } from '../helpers/influxd.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

const BASE = 1_700_000_000_000;
let influxd: Influxd | undefined;
let child: ChildGateway | undefined;
const clients: DeviceClient[] = [];
const raw: RawDevice[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const r of raw.splice(0)) r.terminate();
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

/**
 * Frames sent just before SIGTERM: the ack interval is long (5 s), so no periodic ack covers them;
 * only shutdown's own flush can. The gateway is paused (SIGSTOP) while the devices send, so the
 * frames are still unread in its sockets when the signal arrives, as under load; then SIGTERM and
 * SIGCONT. Each device must get an ack for its last frame before its 1001.
 */
async function lastFramesAcked(storageArgs: string[]): Promise<void> {
  child = await spawnGateway(gatewayArgs(tempDir(), '--ack-interval', '5000', ...storageArgs));
  const ids = Array.from({ length: 10 }, (_, i) => `sig-${String(i).padStart(4, '0')}`);
  const devices = await Promise.all(ids.map((id) => RawDevice.connect(child!.ws, id, deviceToken(id))));
  raw.push(...devices);
  const FRAMES = 1000;
  const pid = child.proc.pid!;
  process.kill(pid, 'SIGSTOP');
  let exited: Promise<number | null>;
  try {
    for (let seq = 1; seq <= FRAMES; seq++) {
      for (const d of devices) d.send(encodeTelemetry({ epoch: 1, seq, timestamp: BASE + seq }, [{ channel: 1, value: seq }]));
    }
    // Every byte in the kernel's socket buffers, then the signal.
    await waitFor(() => devices.every((d) => d.ws.bufferedAmount === 0), 'the frames to leave the clients', 5000, 1);
    exited = child.stop('SIGTERM');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const closes = await Promise.all(devices.map((d) => d.closed));
  expect(await exited).toBe(0);
  for (const [i, d] of devices.entries()) {
    expect(closes[i]!.code, ids[i]).toBe(1001);
    const acks = d.received.filter((f): f is AckFrame => f.type === FrameType.Ack);
    expect(Math.max(0, ...acks.map((a) => (a.epoch === 1 ? a.seq : 0))), `${ids[i]}: the highest seq acked before the close`).toBe(FRAMES);
  }
}

describe('SIGTERM right after a burst', () => {
  it('memory storage: every frame sent before the signal is acked before the 1001 close', async () => {
    await lastFramesAcked([]);
  });

  it.skipIf(influxdPath() === undefined)('InfluxDB: every frame sent before the signal is settled and acked before the 1001 close', async () => {
    influxd = await startInfluxd();
    await lastFramesAcked(['--influx', `${influxd.url}/sigterm`, '--influx-retention', 'INF']);
  });
});
