/**
 * The dashboards a user has open, as /live clients: one browser on the fleet view (our dashboard
 * subscribes `fleet` and `stats` on every page) and one on a device page (adds `device:<id>` and
 * `commands`). They read and count what arrives, as cheaply as ../load/dashboard.ts: the fleet's
 * large snapshots and deltas are skipped unread, only small messages are looked at, to count the
 * device page's `device` messages (the proof that live updates reach a viewer on another instance).
 */
import type { Socket } from 'node:net';
import { controlHandler, maskedFrame, OPCODE, openWebSocket, ServerFrameReader } from '../ws-wire.js';

export const FLEET_VIEW_STREAMS = ['fleet', 'stats'] as const;

export function devicePageStreams(deviceId: string): string[] {
  return ['fleet', 'stats', `device:${deviceId}`, 'commands'];
}

const DEVICE_MESSAGE = Buffer.from('{"type":"device"');
/** A device page's `device` messages for one device are small; fleet messages are not looked at. */
const READ_UP_TO = 4096;

export class Viewer {
  readonly reader: ServerFrameReader;
  /** `device` messages received. */
  deviceMessages = 0;
  closedWith: number | undefined;

  private constructor(readonly socket: Socket, rest: Buffer) {
    const control = controlHandler(socket, (code) => (this.closedWith = code));
    this.reader = new ServerFrameReader(READ_UP_TO, (op, payload) => {
      if (control(op, payload) || op !== OPCODE.text) return;
      if (payload.length >= DEVICE_MESSAGE.length && payload.compare(DEVICE_MESSAGE, 0, DEVICE_MESSAGE.length, 0, DEVICE_MESSAGE.length) === 0) this.deviceMessages++;
    });
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('error', () => {});
    if (rest.length > 0) this.reader.feed(rest);
  }

  static async open(host: string, port: number, operatorToken: string, streams: readonly string[]): Promise<Viewer> {
    const u = await openWebSocket({ host, port, path: '/live', headers: { Authorization: `Bearer ${operatorToken}` } });
    const v = new Viewer(u.socket, u.rest);
    u.socket.write(maskedFrame(OPCODE.text, Buffer.from(JSON.stringify({ op: 'subscribe', streams }))));
    return v;
  }

  get closed(): boolean {
    return this.closedWith !== undefined || this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }
}
