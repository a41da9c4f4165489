/** A /live client for tests: records every message with its arrival time. */
import WebSocket from 'ws';
import type { LiveMessage as Message } from '../../devices/api/json.js';
import { waitFor } from './wait.js';

/**
 * A message as received, with its arrival time. Loosely typed so tests can probe any field (also
 * of malformed answers); `type` is one of the contract's (devices/api/json.ts LiveMessage).
 */
export interface LiveMessage {
  type: Message['type'];
  at: number;
  [k: string]: any;
}

export class LiveClient {
  readonly messages: LiveMessage[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as LiveMessage;
      m.at = Date.now();
      this.messages.push(m);
    });
    ws.on('error', () => {});
  }

  static connect(base: string, token: string): Promise<LiveClient> {
    const ws = new WebSocket(`${base}/live?token=${encodeURIComponent(token)}`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new LiveClient(ws)));
      ws.once('unexpected-response', (_q, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  of(type: Message['type']): LiveMessage[] {
    return this.messages.filter((m) => m.type === type);
  }

  waitFor(pred: (m: LiveMessage) => boolean, what: string, timeoutMs = 5000): Promise<LiveMessage> {
    return waitFor(() => this.messages.find(pred), what, timeoutMs);
  }

  /** The underlying TCP socket (to stop reading, as a frozen browser tab would). */
  get socket(): import('node:net').Socket {
    return (this.ws as unknown as { _socket: import('node:net').Socket })._socket;
  }

  close(): void {
    this.ws.terminate();
  }
}
