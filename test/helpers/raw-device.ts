/** A bare WebSocket device for tests: sends hand-made bytes and records what the gateway answers. */
import WebSocket from 'ws';
import { decodeFrame, FrameType, type AckFrame, type ErrorFrame, type Frame } from '../../devices/codec/index.js';
import { waitFor } from './wait.js';

export interface Closed {
  /** WebSocket close code; undefined where the transport has none (MQTT 3.1.1). */
  code: number | undefined;
  reason: string;
}

/** A device on any transport that sends hand-made frames and records the frames it gets back. */
export interface FrameDevice {
  readonly received: Frame[];
  readonly closed: Promise<Closed>;
  send(bytes: Uint8Array): void;
  /** The transport's normal close: WebSocket close 1000, MQTT DISCONNECT. */
  close(): void;
  /** Drops the connection without a goodbye. */
  terminate(): void;
}

/** True when one of the acks in `frames` covers (epoch, seq): cumulatively (seq or later) or by its range. */
export function ackCovers(frames: readonly Frame[], epoch: number, seq: number): boolean {
  return frames.some((f) => {
    if (f.type !== FrameType.Ack || f.epoch !== epoch) return false;
    const a = f as AckFrame;
    return a.firstSeq === undefined ? a.seq >= seq : a.firstSeq <= seq && seq <= a.seq;
  });
}

/** True when the acks in `frames` cover every seq of `epoch` from `from` to `to`. */
export function ackedRange(frames: readonly Frame[], epoch: number, from: number, to: number): boolean {
  for (let s = from; s <= to; s++) if (!ackCovers(frames, epoch, s)) return false;
  return true;
}

/** Waits until the device was acked every seq of `epoch` from `from` to `to` (bounded). */
export function waitAcked(d: FrameDevice, epoch: number, from: number, to: number, timeoutMs = 5000): Promise<boolean> {
  return waitFor(() => ackedRange(d.received, epoch, from, to), `acks of ${epoch}/${from}..${to}`, timeoutMs);
}

export function errorFrameOf(d: FrameDevice): ErrorFrame | undefined {
  return d.received.find((f): f is ErrorFrame => f.type === FrameType.Error);
}

export class RawDevice implements FrameDevice {
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

  /** Closes with `code` (default 1000, normal closure); null sends a close frame without a code (the gateway sees 1005). */
  close(code: number | null = 1000): void {
    if (code === null) this.ws.close();
    else this.ws.close(code);
  }

  terminate(): void {
    this.ws.terminate();
  }
}
