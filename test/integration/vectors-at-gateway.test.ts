/**
 * Issue 15 point 6: one truth for invalid frames. Every invalid vector is sent by a device to a
 * live gateway (default limits) over WebSocket, a sample of them over MQTT, and the error frame's
 * code must be the vector's `gatewayCode` (PROTOCOL.md "Order of checks"); the oracle is the data
 * file, not the codec.
 */
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeCodeFor, decodeFrame, encodeTelemetry, ERROR_CODES, FrameType, type ErrorFrame } from '../../devices/codec/index.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';
import { fromHex, invalidVectors, validVectors } from '../vectors.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ mqttPort: await freePort() });
});
afterAll(async () => {
  await gw.close();
});

describe('every invalid vector at a live gateway', () => {
  it('the vectors decide the gateway code for every bytes a device may send', () => {
    // Only these differ from the decoder's code: the direction rule, and the count limit.
    for (const v of invalidVectors) {
      if (v.gatewayCode !== v.code) expect(['FRAME_WRONG_DIRECTION', 'TOO_MANY_READINGS'], v.name).toContain(v.gatewayCode);
      const b = fromHex(v.hex);
      if (b.byteLength >= 20 && b[0] === 1 && b[1]! >= 0x80) expect(v.gatewayCode, v.name).toBe('FRAME_WRONG_DIRECTION');
    }
  });

  it('over WebSocket: each gets an error frame with its gatewayCode, then the close code of that code', async () => {
    const wrong: string[] = [];
    for (const [i, v] of invalidVectors.entries()) {
      const id = `vec-${i}`;
      const d = await RawDevice.connect(gw.ws, id, deviceToken(id));
      d.send(fromHex(v.hex));
      const closed = await Promise.race([d.closed, new Promise<undefined>((r) => setTimeout(r, 5000))]);
      const err = d.received.find((f): f is ErrorFrame => f.type === FrameType.Error);
      if (err?.code !== ERROR_CODES[v.gatewayCode] || closed?.code !== closeCodeFor(v.gatewayCode)) {
        wrong.push(`${v.name}: want ${v.gatewayCode}/${closeCodeFor(v.gatewayCode)}, got ${err?.code ?? 'no error frame'}/${closed?.code ?? 'still open'}`);
        d.terminate();
      }
    }
    expect(wrong).toEqual([]);
  });

  it('over WebSocket: every valid gateway-to-device vector sent by a device is FRAME_WRONG_DIRECTION', async () => {
    for (const [i, v] of validVectors.filter((x) => x.frame.type >= 0x80).entries()) {
      const id = `dir-${i}`;
      const d = await RawDevice.connect(gw.ws, id, deviceToken(id));
      d.send(fromHex(v.hex));
      const closed = await d.closed;
      expect(d.received.find((f): f is ErrorFrame => f.type === FrameType.Error)?.code, v.name).toBe(ERROR_CODES.FRAME_WRONG_DIRECTION);
      expect(closed.code, v.name).toBe(4400);
    }
  });

  it('over MQTT (one vector per gateway code, and every fifth): the error frame on the commands topic, then the connection closes', async () => {
    const firstOfCode = new Map(invalidVectors.map((v) => [v.gatewayCode, v] as const));
    const sample = invalidVectors.filter((v, i) => i % 5 === 0 || firstOfCode.get(v.gatewayCode) === v);
    expect(sample.length).toBeGreaterThan(20);
    for (const [i, v] of sample.entries()) {
      const id = `mvec-${i}`;
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`, { clientId: id, username: id, password: deviceToken(id), protocolVersion: 4, reconnectPeriod: 0 });
      const got: Uint8Array[] = [];
      c.on('message', (_t, p) => got.push(new Uint8Array(p)));
      let closed = false;
      c.on('close', () => (closed = true));
      await c.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
      c.publish(`devices/${id}/telemetry`, Buffer.from(fromHex(v.hex)), { qos: 1 });
      await waitFor(() => closed, `${v.name}: the connection to close`);
      const err = got.map((p) => decodeFrame(p)).find((f): f is ErrorFrame => !(f instanceof Error) && f.type === FrameType.Error);
      expect(err?.code, v.name).toBe(ERROR_CODES[v.gatewayCode]);
      c.end(true);
    }
  });
});

// PROTOCOL.md decisions for inputs the codec alone does not settle (issue 15 point 9).
describe('edge inputs the spec decides', () => {
  function telemetry(epoch: number, seq: number, timestampBytes?: number[]): Uint8Array {
    const b = encodeTelemetry({ epoch, seq, timestamp: 1_700_000_000_000 }, [{ channel: 1, value: 2 }]);
    if (timestampBytes) b.set(timestampBytes, 12);
    return b;
  }

  it('a -0.0 timestamp is accepted and means 1970-01-01T00:00:00Z', async () => {
    const d = await RawDevice.connect(gw.ws, 'neg-zero', deviceToken('neg-zero'));
    d.send(telemetry(5, 0, [0, 0, 0, 0, 0, 0, 0, 0x80]));
    await d.waitAck(5, 0);
    expect((await gw.api('/api/devices/neg-zero')).body.last).toEqual({ 1: { value: 2, time: 0 } });
    d.close();
  });

  it('telemetry of epoch 0 is stored and acked as an ordinary epoch', async () => {
    const d = await RawDevice.connect(gw.ws, 'epoch-zero', deviceToken('epoch-zero'));
    d.send(telemetry(0, 7));
    await d.waitAck(0, 7);
    d.close();
  });

  it('the Bearer scheme is case-insensitive and a fleet token may be uppercase hex', async () => {
    const token = deviceToken('casey');
    for (const auth of [`bearer ${token}`, `BEARER ${token.toUpperCase()}`]) {
      const ws = new WebSocket(`${gw.ws}/device?id=casey`, { headers: { authorization: auth } });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_q, res) => reject(new Error(`${auth.slice(0, 8)}: HTTP ${res.statusCode}`)));
      });
      ws.close();
    }
  });
});
