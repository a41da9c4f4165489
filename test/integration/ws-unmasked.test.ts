/**
 * Issue 15 point 11: a client WebSocket frame without a mask (RFC 6455 §5.1: the server must close
 * the connection). Sent on a raw socket, since WebSocket libraries always mask. What uWS does with
 * one is documented in devices/PROTOCOL.md (Known deviations); this test pins it down.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await gw?.close();
  gw = undefined;
});

/** Opens /device for `id` on a raw socket and completes the upgrade; resolves with the socket and what it received. */
async function upgraded(port: number, id: string): Promise<{ socket: Socket; received: Buffer[]; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  const received: Buffer[] = [];
  let ended = false;
  socket.on('data', (b) => received.push(b));
  socket.on('close', () => (ended = true));
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(
    `GET /device?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${deviceToken(id)}\r\n\r\n`,
  );
  await waitFor(() => Buffer.concat(received).includes('\r\n\r\n'), 'the 101 response');
  const head = Buffer.concat(received).toString('latin1');
  expect(head.startsWith('HTTP/1.1 101')).toBe(true);
  received.length = 0;
  return { socket, received, closed: () => ended };
}

/** A single-fragment binary WebSocket frame (payload < 126 bytes), masked or not. */
function wsFrame(payload: Uint8Array, mask: boolean): Buffer {
  const key = Buffer.from([1, 2, 3, 4]);
  const head = Buffer.from([0x82, (mask ? 0x80 : 0) | payload.length]);
  const body = Buffer.from(payload.map((b, i) => (mask ? b ^ key[i % 4]! : b)));
  return Buffer.concat(mask ? [head, key, body] : [head, body]);
}

/** The server's (unmasked) WebSocket frames in `bytes`. */
function serverFrames(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let p = 0;
  while (p + 2 <= bytes.length) {
    let len = bytes[p + 1]! & 0x7f;
    let at = p + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
    }
    out.push({ opcode: bytes[p]! & 0x0f, payload: bytes.subarray(at, at + len) });
    p = at + len;
  }
  return out;
}

describe('an unmasked client WebSocket frame', () => {
  it('is never ingested as sent: uWS reads its first four payload bytes as a mask, and the gateway refuses what that makes', async () => {
    gw = await startGateway();
    const { socket, received, closed } = await upgraded(gw.gateway.port, 'unmasked');
    const frame = encodeTelemetry({ epoch: 5, seq: 0, timestamp: Date.now() }, [{ channel: 0, value: 1 }]);
    socket.write(wsFrame(frame, false));
    // The four bytes uWS still waits for (it took four of the payload for a mask key): the message completes.
    socket.write(Buffer.alloc(4));
    await waitFor(() => closed(), 'the gateway to close the connection');
    const bytes = Buffer.concat(received);
    // A server close frame (0x88) with code 4400 BAD_FRAME after the error frame: the bytes were read
    // as garbage, never as the telemetry frame they carried.
    const frames = serverFrames(bytes);
    expect(frames.map((f) => f.opcode)).toEqual([0x2, 0x8]);
    expect(frames[1]!.payload.readUInt16BE(0)).toBe(4400);
    const { body } = await gw.api('/api/devices/unmasked');
    expect(body.counters).toMatchObject({ frames: 0, errors: 1 });
    // The same frame masked, as RFC 6455 requires, is taken.
    const ok = await upgraded(gw.gateway.port, 'masked');
    ok.socket.write(wsFrame(frame, true));
    await waitFor(async () => (await gw!.api('/api/devices/masked')).body.counters.frames === 1, 'the masked frame to be taken');
  });
});
