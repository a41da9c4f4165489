/** The embedded MQTT broker driven by real MQTT clients: Debian's mosquitto_pub/mosquitto_sub and MQTT.js. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame, encodeTelemetry, ERROR_CODES, FrameType, type TelemetryFrame } from '../../devices/codec/index.js';
import { deviceToken, OPERATOR_TOKEN, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { fromHex, validVector } from '../vectors.js';

const pub = requireProgram('mosquitto_pub', 'mosquitto-clients');
const sub = requireProgram('mosquitto_sub', 'mosquitto-clients');

let gw: TestGateway | undefined;
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await gw?.close();
  gw = undefined;
});

async function start(): Promise<TestGateway> {
  gw = await startGateway({ mqttPort: await freePort(), ackInterval: 10 });
  return gw;
}

function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) ?? 1 : 0, stdout, stderr });
    });
  });
}

function creds(id: string, token = deviceToken(id)): string[] {
  return ['-h', '127.0.0.1', '-p', String(gw!.gateway.mqttPort), '-i', id, '-u', id, '-P', token];
}

let frameFile = '';
beforeAll(() => {
  frameFile = join(tempDir(), 'golden.bin');
  writeFileSync(frameFile, fromHex(validVector('telemetry-64-bytes-8-readings').hex));
});

describe.skipIf(!pub || !sub)('embedded MQTT broker with mosquitto clients', () => {
  it('ingests a golden-vector frame sent by mosquitto_pub -f with a device\'s credentials', async () => {
    await start();
    const r = await run(pub!, [...creds('mq-1'), '-t', 'devices/mq-1/telemetry', '-q', '1', '-f', frameFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const v = validVector('telemetry-64-bytes-8-readings').frame as TelemetryFrame;
    const dev = await waitFor(async () => {
      const { body } = await gw!.api('/api/devices/mq-1');
      return body?.counters?.frames === 1 ? body : undefined;
    }, 'the frame to be ingested');
    expect(dev.counters).toMatchObject({ frames: 1, readings: v.readings.length, errors: 0 });
    expect(dev).toMatchObject({ epoch: v.epoch, ackedSeq: v.seq });
    // mosquitto_pub ends with DISCONNECT: a clean close.
    await waitFor(async () => (await gw!.api('/api/devices/mq-1')).body.offlineCause === 'closed', 'offline cause closed');
  });

  it('refuses a wrong password with CONNACK "bad user name or password"', async () => {
    await start();
    const r = await run(pub!, [...creds('mq-2', 'wrong'), '-t', 'devices/mq-2/telemetry', '-f', frameFile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/bad user name or password/i);
    expect(gw!.gateway.sessions.refusals.get('UNAUTHORIZED', 'mqtt')).toBe(1);
    expect((await gw!.api('/api/devices')).body.devices).toEqual([]);
  });

  it('refuses a client id that is not the device id', async () => {
    await start();
    const r = await run(pub!, ['-h', '127.0.0.1', '-p', String(gw!.gateway.mqttPort), '-i', 'someone-else', '-u', 'mq-3', '-P', deviceToken('mq-3'), '-t', 'devices/mq-3/telemetry', '-f', frameFile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/identifier rejected/i);
    expect(gw!.gateway.sessions.refusals.get('MQTT_CLIENT_ID_MISMATCH', 'mqtt')).toBe(1);
  });

  it('closes the connection of a device that publishes to a foreign topic, and ingests nothing', async () => {
    await start();
    const r = await run(pub!, [...creds('mq-4'), '-t', 'devices/mq-5/telemetry', '-q', '1', '-f', frameFile]);
    expect(r.code).not.toBe(0);
    expect(gw!.gateway.sessions.refusals.get('MQTT_FOREIGN_TOPIC', 'mqtt')).toBe(1);
    expect(gw!.gateway.ingest.stats.frames).toBe(0);
    expect((await gw!.api('/api/devices/mq-4')).body).toMatchObject({ online: false, offlineCause: 'kicked', offlineDetail: 'MQTT_FOREIGN_TOPIC', counters: { errors: 1 } });
  });

  it('lets mosquitto_sub subscribe only to its own commands topic', async () => {
    await start();
    const foreign = await run(sub!, [...creds('mq-6'), '-t', 'devices/mq-7/commands', '-W', '3']);
    expect(foreign.stderr).toMatch(/denied/i);
    const wildcard = await run(sub!, [...creds('mq-6'), '-t', 'devices/+/commands', '-W', '3']);
    expect(wildcard.stderr).toMatch(/denied/i);
    expect(gw!.gateway.sessions.refusals.get('MQTT_SUBSCRIBE_REFUSED', 'mqtt')).toBe(2);
    // Its own topic is granted: mosquitto_sub stays subscribed until -W ends it, with no denial.
    const own = await run(sub!, [...creds('mq-6'), '-t', 'devices/mq-6/commands', '-W', '2']);
    expect(own.stderr).not.toMatch(/denied/i);
  });
});

describe('embedded MQTT broker with MQTT.js', () => {
  async function device(id: string): Promise<{ client: mqtt.MqttClient; frames: ReturnType<typeof decodeFrame>[] }> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw!.gateway.mqttPort}`, {
      clientId: id,
      username: id,
      password: deviceToken(id),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    clients.push(client);
    const frames: ReturnType<typeof decodeFrame>[] = [];
    client.on('message', (_t, payload) => frames.push(decodeFrame(new Uint8Array(payload))));
    await client.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    return { client, frames };
  }

  it('acks telemetry on the device\'s commands topic, dedupes replays, and tracks presence', async () => {
    await start();
    const { client, frames } = await device('js-1');
    for (let s = 0; s < 50; s++) await client.publishAsync('devices/js-1/telemetry', Buffer.from(encodeTelemetry({ epoch: 9, seq: s, timestamp: 1_700_000_000_000 + s }, [{ channel: 1, value: s }])), { qos: 1 });
    await client.publishAsync('devices/js-1/telemetry', Buffer.from(encodeTelemetry({ epoch: 9, seq: 10, timestamp: 1 }, [{ channel: 1, value: -1 }])), { qos: 1 });
    await waitFor(() => frames.some((f) => !(f instanceof Error) && f.type === FrameType.Ack && f.seq === 49 && f.epoch === 9), 'ack of seq 49');
    const { body } = await gw!.api('/api/devices/js-1');
    expect(body).toMatchObject({ online: true, transport: 'mqtt', counters: { frames: 50, duplicates: 1, errors: 0 } });
    await client.endAsync();
    await waitFor(async () => (await gw!.api('/api/devices/js-1')).body.offlineCause === 'closed', 'offline cause closed');
  });

  it('answers a payload that is not a valid frame with an error frame, then disconnects; other devices carry on', async () => {
    await start();
    const good = await device('js-good');
    const bad = await device('js-bad');
    const closed = new Promise<void>((r) => bad.client.once('close', () => r()));
    bad.client.publish('devices/js-bad/telemetry', Buffer.from('{"temperature": 21.5}'), { qos: 0 });
    await closed;
    const err = bad.frames.find((f) => !(f instanceof Error) && f.type === FrameType.Error);
    expect(err).toMatchObject({ code: ERROR_CODES.FRAME_BAD_VERSION });
    await good.client.publishAsync('devices/js-good/telemetry', Buffer.from(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 5 }, [{ channel: 0, value: 1 }])), { qos: 1 });
    await waitFor(() => good.frames.some((f) => !(f instanceof Error) && f.type === FrameType.Ack), 'the good device\'s ack');
    expect((await gw!.api('/api/devices/js-bad')).body).toMatchObject({ online: false, offlineCause: 'kicked', lastError: 'FRAME_BAD_VERSION' });
  });

  it('marks an MQTT device that goes silent offline with cause timeout after its keepalive', async () => {
    await start();
    // A raw TCP client: CONNECT with a 1 s keepalive, then silence (no PINGREQ), as a hung device.
    const socket = connect(gw!.gateway.mqttPort, '127.0.0.1');
    socket.on('error', () => {});
    const id = 'raw-quiet';
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, username: id, password: Buffer.from(deviceToken(id)), keepalive: 1 }));
    await waitFor(async () => (await gw!.api(`/api/devices/${id}`)).body?.online, 'online');
    const silentSince = Date.now();
    const dev = await waitFor(async () => {
      const { body } = await gw!.api(`/api/devices/${id}`);
      return body.online ? undefined : body;
    }, 'the silent MQTT device to go offline', 10_000, 100);
    expect(dev.offlineCause).toBe('timeout');
    // MQTT 3.1.1: the server closes after 1.5 x keepalive.
    expect(Date.now() - silentSince).toBeLessThan(3000);
    socket.destroy();
  });

  it('replaces an older connection of the same device, across transports', async () => {
    await start();
    const first = await device('js-twin');
    const closed = new Promise<void>((r) => first.client.once('close', () => r()));
    await device('js-twin');
    await closed;
    const { body } = await gw!.api('/api/devices/js-twin');
    expect(body).toMatchObject({ online: true, transport: 'mqtt', counters: { connections: 2 } });
  });

  it('refuses an integration ($operator) whose client id is a connected device\'s id, instead of knocking the device off', async () => {
    // aedes takes a client id over whoever holds it: the device was dropped (offline
    // connection_lost), reconnected, and dropped the integration in turn.
    await start();
    const { client } = await device('js-held');
    let dropped = false;
    client.once('close', () => (dropped = true));
    const before = gw!.gateway.sessions.refusals.get('DEVICE_ALREADY_CONNECTED', 'mqtt');
    const integration = mqtt.connectAsync(`mqtt://127.0.0.1:${gw!.gateway.mqttPort}`, { clientId: 'js-held', username: '$operator', password: OPERATOR_TOKEN, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    await expect(integration).rejects.toThrow(/Identifier rejected/i);
    expect(gw!.gateway.sessions.refusals.get('DEVICE_ALREADY_CONNECTED', 'mqtt')).toBe(before + 1);
    // The device still answers on the same connection.
    await client.publishAsync('devices/js-held/telemetry', Buffer.from(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 1_700_000_000_000 }, [{ channel: 1, value: 1 }])), { qos: 1 });
    await waitFor(async () => (await gw!.api('/api/devices/js-held')).body.counters.frames === 1, 'the frame of the device');
    expect(dropped).toBe(false);
    expect((await gw!.api('/api/devices/js-held')).body).toMatchObject({ online: true, counters: { connections: 1 } });
  });
});
