/**
 * Device connections of the load generator: a real WebSocket upgrade per device (with the fleet
 * token, as the gateway requires), then raw writes of pre-encoded frames. Whatever a server sends
 * back (acks, pings) is read and discarded; pings get pongs.
 */
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { fleetToken } from '../../../devices/token.js';
import { templateFrame } from '../frames.js';
import { controlHandler, OPCODE, openWebSocket, ServerFrameReader } from '../ws-wire.js';
import type { AckLedger } from './acks.js';
import { sourceAddress } from './source-address.js';

export interface DeviceTarget {
  host: string;
  port: number;
  /** Sent as `Authorization: Bearer HMAC(fleetKey, id)`; servers that do not check it ignore it. */
  fleetKey: string;
}

export function deviceId(index: number): string {
  return `bench-${String(index + 1).padStart(5, '0')}`;
}

export class WsDevice {
  readonly epoch = randomInt(1, 0xffffffff);
  /** Next seq to send. */
  seq = 1;
  readonly template: Buffer;
  readonly reader: ServerFrameReader;
  closedBy: number | undefined;
  /** Highest seq the server acked (gateway only). */
  acked = 0;

  constructor(
    readonly id: string,
    readonly socket: Socket,
    rest: Buffer,
    baseTime: number,
    ledger: AckLedger | undefined,
  ) {
    this.template = templateFrame(this.epoch, baseTime);
    const control = controlHandler(socket, (code) => (this.closedBy = code));
    // Acks are 20 bytes; nothing bigger is looked at.
    this.reader = new ServerFrameReader(64, (op, payload) => {
      if (control(op, payload) || op !== OPCODE.binary || !ledger) return;
      const seq = ledger.onMessage(payload, this.acked);
      if (seq !== undefined) this.acked = seq;
    });
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('error', () => {});
    if (rest.length > 0) this.reader.feed(rest);
  }
}

/**
 * Opens `count` device connections, `concurrency` upgrades at a time (a burst of thousands of
 * SYNs at once overflows the listen backlog and stalls on SYN retries).
 */
export async function connectDevices(t: DeviceTarget, count: number, baseTime: number, ledger?: AckLedger, first = 0, concurrency = 500): Promise<WsDevice[]> {
  const out: WsDevice[] = [];
  for (let start = 0; start < count; start += concurrency) {
    const batch: Promise<WsDevice>[] = [];
    for (let i = start; i < Math.min(count, start + concurrency); i++) {
      const id = deviceId(first + i);
      batch.push(
        openWebSocket({
          host: t.host,
          port: t.port,
          path: `/device?id=${id}`,
          headers: { Authorization: `Bearer ${fleetToken(t.fleetKey, id)}` },
          localAddress: sourceAddress(t.host, first + i),
        }).then((u) => new WsDevice(id, u.socket, u.rest, baseTime, ledger)),
      );
    }
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Bytes and messages the server sent to all devices (acks, mostly). */
export function downstream(devices: readonly WsDevice[]): { bytes: number; messages: number; closed: number } {
  let bytes = 0;
  let messages = 0;
  let closed = 0;
  for (const d of devices) {
    bytes += d.reader.bytes;
    messages += d.reader.messages;
    if (d.closedBy !== undefined || d.socket.destroyed) closed++;
  }
  return { bytes, messages, closed };
}
