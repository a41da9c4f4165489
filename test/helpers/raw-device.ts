/** A bare WebSocket device for tests: sends hand-made bytes and records what the gateway answers. */
import WebSocket from 'ws';
import { decodeFrame, type Frame } from '../../devices/codec/index.js';
import { waitFor } from './wait.js';

export interface Closed {
  code: number;
  reason: string;
}

export class RawDevice {
  readonly received: Frame[] = [];
  closedWith: Closed | undefined;
  readonly closed: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const f = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (!(f instanceof Error)) this.received.push(f);
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
      }),
    );
    ws.on('error', () => {});
  }

  /** Opens /device?id=…; resolves when open, rejects with the HTTP status when the upgrade is refused. */
  static connect(base: string, id: string, token: string | undefined, how: 'header' | 'query' = 'header'): Promise<RawDevice> {
    const q = `id=${encodeURIComponent(id)}` + (token !== undefined && how === 'query' ? `&token=${encodeURIComponent(token)}` : '');
    const headers = token !== undefined && how === 'header' ? { authorization: `Bearer ${token}` } : undefined;
    const ws = new WebSocket(`${base}/device?${q}`, { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawDevice(ws)));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  send(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  /** Waits for a cumulative ack covering (epoch, seq). */
  waitAck(epoch: number, seq: number, timeoutMs = 5000): Promise<Frame> {
    return waitFor(() => this.received.find((f) => f.type === 0x81 && f.epoch === epoch && f.seq === seq), `ack of ${epoch}/${seq}`, timeoutMs);
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
