/** A device on a bare WebSocket: sends bytes as given, records frames and the close (no SDK). */
import { WebSocket } from 'ws';
import { decodeFrame, FrameType, type AckFrame, type ErrorFrame, type Frame } from '../codec/index.js';

export interface UpgradeRefusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface WsTarget {
  /** ws:// or wss:// base, no path. */
  base: string;
  ca?: Buffer | undefined;
}

export class RawWs {
  readonly frames: Frame[] = [];
  closedWith: { code: number; reason: string } | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      const f = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (!(f instanceof Error)) this.frames.push(f);
    });
    ws.on('close', (code, reason) => (this.closedWith = { code, reason: reason.toString() }));
    ws.on('error', () => {});
  }

  /** Opens /device with the given query and headers: a RawWs, or the HTTP refusal of the upgrade. */
  static open(t: WsTarget, query: string, headers: Record<string, string>, timeoutMs: number): Promise<RawWs | UpgradeRefusal> {
    const ws = new WebSocket(`${t.base}/device${query}`, { headers, ca: t.ca, handshakeTimeout: timeoutMs });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWs(ws)));
      ws.once('unexpected-response', (req, res) => {
        // Else the refused request's keep-alive socket holds the process open.
        const socket = res.socket;
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          req.destroy();
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
        res.on('error', reject);
      });
      ws.once('error', reject);
    });
  }

  send(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  acks(epoch: number): AckFrame[] {
    return this.frames.filter((f): f is AckFrame => f.type === FrameType.Ack && f.epoch === epoch);
  }

  error(): ErrorFrame | undefined {
    return this.frames.find((f): f is ErrorFrame => f.type === FrameType.Error);
  }

  close(): void {
    if (this.closedWith === undefined) this.ws.terminate();
  }
}
