/**
 * Bridge mode: a command's `sent` means the external broker took it (its PUBACK), never that it
 * waits in MQTT.js's offline queue. A real Mosquitto is stopped by its PID while a device is online
 * and started again on the same port (with persistence, so the device's clean=false subscription
 * survives and nothing depends on who reconnects first).
 */
import { rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandStatus, decodeFrame, encodeCommandResult, encodeTelemetry, FrameType, type CommandFrame } from '../../devices/codec/index.js';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;
let broker: Mosquitto | undefined;
let gateway: TestGateway | undefined;
let device: mqtt.MqttClient | undefined;
const dirs: string[] = [];
afterEach(async () => {
  device?.end(true);
  device = undefined;
  await gateway?.close();
  gateway = undefined;
  await broker?.stop();
  broker = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!hasMosquitto)('bridge mode: commands while the broker is away', () => {
  it('a command created while the broker is down stays queued, then goes sent and acked once the broker is back', async () => {
    const sessions = tempDir('gw-mosq-sessions-');
    dirs.push(sessions);
    broker = await startMosquitto(undefined, sessions);
    const port = broker.port;
    gateway = await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'cmd-outage', idleTimeout: 600 });
    const g = gateway;
    const id = 'bridged-outage';
    // MQTT 3.1.1 with clean=false: the broker keeps the subscription (and queues for it) across its restart.
    const d = await mqtt.connectAsync(broker.url, { clientId: id, protocolVersion: 4, clean: false, reconnectPeriod: 200, connectTimeout: 5000 });
    device = d;
    d.on('error', () => {});
    const commands: string[] = [];
    d.on('message', (_t, payload) => {
      const f = decodeFrame(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
      if (f instanceof Error || f.type !== FrameType.Command) return;
      const c = f as CommandFrame;
      commands.push(c.commandId);
      d.publish(`devices/${id}/results`, Buffer.from(encodeCommandResult({ timestamp: Date.now() }, { commandId: c.commandId, status: CommandStatus.Ok, payload: '"done"' })), { qos: 1 });
    });
    await d.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    // The gateway learns of a bridged device from its traffic.
    await d.publishAsync(`devices/${id}/telemetry`, Buffer.from(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 1_700_000_000_000 }, [{ channel: 0, value: 1 }])), { qos: 1 });
    await waitFor(async () => (await g.api(`/api/devices/${id}`)).body?.online === true, 'the gateway to see the device');

    const bridge = (g.gateway as unknown as { bridge: { client: mqtt.MqttClient } }).bridge.client;
    let attempts = 0;
    bridge.on('reconnect', () => attempts++);
    await broker.stop();
    broker = undefined;
    await waitFor(() => !bridge.connected, 'the bridge to notice the broker is gone');

    const created = await g.api(`/api/devices/${id}/commands`, { method: 'POST', body: JSON.stringify({ name: 'blink', args: 1, ttlMs: 120_000 }) });
    expect(created.status).toBe(201);
    const commandId = created.body.id as string;
    expect(created.body.state).toBe('queued');
    // Past two reconnect attempts, so the command service's retry tick (every second) ran meanwhile.
    await waitFor(() => attempts >= 2, 'two reconnect attempts of the bridge', 20_000);
    const waiting = (await g.api(`/api/commands/${commandId}`)).body;
    expect(waiting.state).toBe('queued');
    expect(waiting.history.map((h: { state: string }) => h.state)).toEqual(['queued']);

    broker = await startMosquitto(port, sessions);
    await waitFor(async () => (await g.api(`/api/commands/${commandId}`)).body?.state === 'acked', 'the command acked after the broker came back', 20_000);
    const done = (await g.api(`/api/commands/${commandId}`)).body;
    expect(done.history.map((h: { state: string }) => h.state)).toEqual(['queued', 'sent', 'acked']);
    expect(done.result).toBe('done');
    expect(commands).toEqual([commandId]);
  });

  it('a command in flight when the broker dies stays queued, and the gateway still stops', async () => {
    broker = await startMosquitto();
    const b = broker;
    gateway = await startGateway({ mqttUrl: b.url, mqttShareGroup: 'cmd-inflight', idleTimeout: 600 });
    const g = gateway;
    const id = 'bridged-inflight';
    const d = await mqtt.connectAsync(b.url, { clientId: id, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    device = d;
    d.on('error', () => {});
    await d.publishAsync(`devices/${id}/telemetry`, Buffer.from(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 1_700_000_000_000 }, [{ channel: 0, value: 1 }])), { qos: 1 });
    await waitFor(async () => (await g.api(`/api/devices/${id}`)).body?.online === true, 'the gateway to see the device');
    const bridge = (g.gateway as unknown as { bridge: { client: mqtt.MqttClient } }).bridge.client;
    // A frozen broker: the bridge still counts as connected, its publish goes out and no PUBACK comes.
    const pid = b.proc.pid!;
    process.kill(pid, 'SIGSTOP');
    const created = await g.api(`/api/devices/${id}/commands`, { method: 'POST', body: JSON.stringify({ name: 'blink', args: 1, ttlMs: 120_000 }) });
    expect(created.status).toBe(201);
    const commandId = created.body.id as string;
    const exited = new Promise<void>((r) => b.proc.once('exit', () => r()));
    process.kill(pid, 'SIGKILL');
    await exited;
    broker = undefined;
    await waitFor(() => !bridge.connected, 'the bridge to lose the broker');
    const c = (await g.api(`/api/commands/${commandId}`)).body;
    expect(c.state).toBe('queued');
    expect(c.history.map((h: { state: string }) => h.state)).toEqual(['queued']);
    gateway = undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([g.close(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the gateway did not stop within 15 s while its broker was gone')), 15_000)))]);
    clearTimeout(timer);
  });
});
