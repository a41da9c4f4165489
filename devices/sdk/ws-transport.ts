import { WebSocket } from 'ws';
import type { Transport, TransportCloseInfo, TransportFactory, TransportHandlers, TransportTarget } from './transport.js';

/** Path used when the URL has none (DESIGN.md: the gateway serves devices at /device). */
export const DEFAULT_DEVICE_PATH = '/device';
const ABNORMAL_CLOSURE = 1006;

/**
 * The URL a device connects to: `url` with path /device when its path is empty or '/', and
 * ?id=<deviceId>. The token never goes into it (it travels in the Authorization header).
 */
export function deviceUrl(url: string, deviceId: string): string {
  const u = new URL(url);
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`a WebSocket URL starts with ws:// or wss://, got ${u.protocol}//`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = DEFAULT_DEVICE_PATH;
  u.searchParams.set('id', deviceId);
  return u.toString();
}

/** A TransportFactory for the gateway's binary WebSocket endpoint (Node, `ws` package). */
export function wsTransport(target: TransportTarget): TransportFactory {
  const url = deviceUrl(target.url, target.deviceId);
  const authorization = `Bearer ${target.token}`;
  return (handlers) => new WsTransport(url, authorization, handlers, target.ca);
}

class WsTransport implements Transport {
  readonly #ws: WebSocket;
  #status: number | undefined;
  #error: Error | undefined;

  constructor(url: string, authorization: string, handlers: TransportHandlers, ca?: string | Buffer) {
    const ws = new WebSocket(url, {
      headers: { authorization },
      perMessageDeflate: false,
      followRedirects: false,
      ...(ca !== undefined ? { ca } : {}),
    });
    this.#ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => handlers.open());
    // With binaryType 'nodebuffer' a message is one Buffer (a Uint8Array), never Buffer[].
    ws.on('message', (data) => handlers.message(data as Buffer));
    ws.on('unexpected-response', (_req, res) => {
      this.#status = res.statusCode;
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      this.#error ??= err;
    });
    ws.on('close', (code, reason) => {
      const status = this.#status;
      const info: TransportCloseInfo = {
        code: code || ABNORMAL_CLOSURE,
        reason: status !== undefined ? `HTTP ${status}` : reason.toString() || (this.#error?.message ?? ''),
        unauthorized: status === 401,
      };
      if (status !== undefined) info.status = status;
      else if (this.#error !== undefined) info.error = this.#error;
      handlers.close(info);
    });
  }

  send(frame: Uint8Array): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(frame, { binary: true });
  }

  close(code: number, reason: string): void {
    if (this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
    else this.#ws.close(code, reason);
  }

  destroy(): void {
    this.#ws.terminate();
  }
}
