/**
 * Refusals through a real gateway, over WebSocket and embedded MQTT: each answered as the one
 * refusal table says, each counted in gateway_refusals_total by code and transport, and the log
 * holding a few lines with every refusal accounted for, however many there are.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '../../devices/codec/index.js';
import { REFUSALS, type RefusalCode } from '../../gateway/session/refusals.js';
import { DEFAULT_REFUSAL_LOG_INTERVAL_MS } from '../../gateway/session/refusal-log.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway | undefined;
const clients: mqtt.MqttClient[] = [];
const sockets: RawDevice[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const d of sockets.splice(0)) d.ws.terminate();
  await gw?.close();
  gw = undefined;
});

function capturedLogger(): { log: pino.Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

/** The HTTP status of a refused upgrade. */
async function wsStatus(id: string, token: string | undefined): Promise<number> {
  try {
    sockets.push(await RawDevice.connect(gw!.ws, id, token));
    return 101;
  } catch (err) {
    return (err as { status: number }).status;
  }
}

/** The CONNACK return code an MQTT 3.1.1 CONNECT gets (0 = accepted; the client is kept). */
async function connack(id: string, password: string, clientId = id): Promise<number> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${gw!.gateway.mqttPort}`, { clientId, username: id, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
  clients.push(c);
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(0));
    // Closed without any CONNACK: -1, so a missing answer fails the comparison instead of hanging.
    c.once('close', () => resolve(-1));
    c.once('error', (err) => ((err as { code?: unknown }).code !== undefined ? resolve(Number((err as { code: number }).code)) : reject(err)));
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(gw!.http + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

const counted = (code: RefusalCode, transport: 'ws' | 'mqtt') => metric(`gateway_refusals_total{code="${code}",transport="${transport}"}`);

describe('refusals', () => {
  it('answer every admission refusal as the table says, on both transports, and count each by code and transport', async () => {
    gw = await startGateway({ mqttPort: await freePort(), maxDevices: 2, duplicateId: 'reject' });
    const table = (code: RefusalCode) => REFUSALS[code] as { http?: number; connack?: number };

    expect(await wsStatus('bad id!', deviceToken('bad id!'))).toBe(table('BAD_DEVICE_ID').http);
    expect(await connack('bad id!', deviceToken('bad id!'))).toBe(table('BAD_DEVICE_ID').connack);
    expect(await wsStatus('a', 'wrong')).toBe(table('UNAUTHORIZED').http);
    expect(await connack('a', 'wrong')).toBe(table('UNAUTHORIZED').connack);
    expect(await connack('a', deviceToken('a'), 'someone-else')).toBe(table('MQTT_CLIENT_ID_MISMATCH').connack);

    expect(await wsStatus('held', deviceToken('held'))).toBe(101);
    expect(await connack('held-too', deviceToken('held-too'))).toBe(0);
    expect(await wsStatus('held-too', deviceToken('held-too'))).toBe(table('DEVICE_ALREADY_CONNECTED').http);
    expect(await connack('held', deviceToken('held'))).toBe(table('DEVICE_ALREADY_CONNECTED').connack);
    // Full (--max-devices 2): a newcomer is told to come back later, on either transport.
    expect(await wsStatus('c', deviceToken('c'))).toBe(table('TOO_MANY_DEVICES').http);
    expect(await connack('c', deviceToken('c'))).toBe(table('TOO_MANY_DEVICES').connack);

    for (const code of ['BAD_DEVICE_ID', 'UNAUTHORIZED', 'DEVICE_ALREADY_CONNECTED', 'TOO_MANY_DEVICES'] as const) {
      expect(await counted(code, 'ws'), `${code} ws`).toBe(1);
      expect(await counted(code, 'mqtt'), `${code} mqtt`).toBe(1);
    }
    expect(await counted('MQTT_CLIENT_ID_MISMATCH', 'mqtt')).toBe(1);
    expect(await metric('gateway_errors_total{code="UNAUTHORIZED"}')).toBe(2);
  });

  it('turn hundreds of bad-token attempts into a few log lines that still account for every one', async () => {
    const { log, lines } = capturedLogger();
    gw = await startGateway({ mqttPort: await freePort(), logLevel: 'info' }, { log });
    const started = Date.now();
    const N = 400;
    for (let i = 0; i < N; i += 20) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => wsStatus(`ws-${i + k}`, `bad-token-${i + k}`)));
      await Promise.all(Array.from({ length: 10 }, (_, k) => connack(`mq-${i + k}`, `bad-token-${i + k}`)));
    }
    expect(await counted('UNAUTHORIZED', 'ws')).toBe(N / 2);
    expect(await counted('UNAUTHORIZED', 'mqtt')).toBe(N / 2);
    const elapsed = Date.now() - started;
    await gw.close(); // writes what the log still held back
    gw = undefined;
    const refusalLines = lines.filter((l) => l.code === 'UNAUTHORIZED' || l.refused !== undefined);
    // One line at once, then at most one per interval, and the one written at close.
    expect(refusalLines.length).toBeLessThanOrEqual(2 + Math.ceil(elapsed / DEFAULT_REFUSAL_LOG_INTERVAL_MS));
    let logged = 0;
    for (const l of refusalLines) logged += l.refused ? l.total : 1;
    expect(logged).toBe(N);
    const byKey: Record<string, number> = {};
    for (const l of refusalLines) {
      if (l.refused) for (const [k, n] of Object.entries(l.refused as Record<string, number>)) byKey[k] = (byKey[k] ?? 0) + n;
      else byKey[`${l.code}/${l.transport}`] = (byKey[`${l.code}/${l.transport}`] ?? 0) + 1;
    }
    expect(byKey).toEqual({ 'UNAUTHORIZED/ws': N / 2, 'UNAUTHORIZED/mqtt': N / 2 });
    expect(JSON.stringify(lines)).not.toContain('bad-token-');
  });

  it('tell a device knocking on a stopping gateway SHUTTING_DOWN (HTTP 503), not let it in', async () => {
    gw = await startGateway();
    // uWS keeps open keep-alive connections after the gateway stops listening: an upgrade can still come.
    const socket = connect(gw.gateway.port, '127.0.0.1');
    sockets.push({ ws: { terminate: () => socket.destroy() } } as unknown as RawDevice);
    let got = '';
    socket.on('data', (b) => (got += b.toString()));
    await new Promise((r) => socket.once('connect', r));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => got.includes('"status"'), 'the keep-alive answer');
    got = '';
    await gw.gateway.close();
    socket.write(
      'GET /device?id=late HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${deviceToken('late')}\r\n\r\n`,
    );
    await waitFor(() => got.includes('SHUTTING_DOWN'), 'the refusal');
    expect(got).toMatch(/^HTTP\/1\.1 503/);
    expect(gw.gateway.sessions.refusals.get('SHUTTING_DOWN', 'ws')).toBe(1);
    expect(gw.gateway.devices.get('late')).toBeUndefined();
  });

  it('close a connected device with 1001 at shutdown, with no error frame: SHUTTING_DOWN is only a refusal at the door (issue 15 point 9)', async () => {
    gw = await startGateway({ mqttPort: await freePort() });
    const d = await RawDevice.connect(gw.ws, 'running', deviceToken('running'));
    sockets.push(d);
    const m = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, { clientId: 'running-mq', username: 'running-mq', password: deviceToken('running-mq'), reconnectPeriod: 0 });
    await m.subscribeAsync('devices/running-mq/commands', { qos: 1 });
    const mqttFrames: Buffer[] = [];
    m.on('message', (_t, payload) => mqttFrames.push(payload));
    const mqttClosed = new Promise<void>((r) => m.once('close', () => r()));
    await gw.gateway.close();
    expect((await d.closed).code).toBe(1001);
    expect(d.received.filter((f) => f.type === FrameType.Error)).toEqual([]);
    await mqttClosed;
    expect(mqttFrames).toEqual([]);
    m.end(true);
  });
});
