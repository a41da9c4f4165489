/**
 * Just enough WebSocket (RFC 6455) on plain TCP sockets for the load generator: a normal HTTP
 * upgrade, masked client frames, and a reader for server frames that can skip payloads without
 * copying them (counting) or hand them over (the latency dashboard).
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export interface UpgradeTarget {
  host: string;
  port: number;
  /** Path and query, e.g. `/device?id=dev-1`. */
  path: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** The connection's source address (load/source-address.ts); default: the kernel's choice. */
  localAddress?: string;
}

/** An upgraded socket and the bytes that came after the 101 response (already frames). */
export interface Upgraded {
  socket: Socket;
  rest: Buffer;
}

/** Opens a TCP connection and upgrades it; rejects with the status line when the server refuses. */
export function openWebSocket(t: UpgradeTarget): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: t.host, port: t.port, noDelay: true, ...(t.localAddress ? { localAddress: t.localAddress } : {}) });
    const key = randomBytes(16).toString('base64');
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`upgrade of ${t.path} timed out after ${t.timeoutMs ?? 10_000} ms`)), t.timeoutMs ?? 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      let req = `GET ${t.path} HTTP/1.1\r\nHost: ${t.host}:${t.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
      for (const [k, v] of Object.entries(t.headers ?? {})) req += `${k}: ${v}\r\n`;
      socket.write(req + '\r\n');
    });
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > 16_384) fail(new Error('upgrade response headers over 16 KiB'));
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      const status = text.slice(0, text.indexOf('\r\n'));
      if (!/^HTTP\/1\.1 101/.test(status)) return fail(new Error(`upgrade of ${t.path.replace(/token=[^&]*/, 'token=…')} refused: ${status} ${head.subarray(end + 4, end + 300).toString('utf8')}`));
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
      if (accept !== acceptKey(key)) return fail(new Error('upgrade response has a wrong Sec-WebSocket-Accept'));
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

/** A client frame with a random masking key (what ordinary clients send: subscribe messages, pongs, close). */
export function maskedFrame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const out = Buffer.allocUnsafe(2 + lenBytes + 4 + n);
  out[0] = 0x80 | opcode;
  if (lenBytes === 0) out[1] = 0x80 | n;
  else if (lenBytes === 2) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  const maskAt = 2 + lenBytes;
  randomBytes(4).copy(out, maskAt);
  for (let i = 0; i < n; i++) out[maskAt + 4 + i] = payload[i]! ^ out[maskAt + (i & 3)]!;
  return out;
}

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/**
 * Reads unmasked server frames from a byte stream. Payloads of messages over `keepUpTo` bytes are
 * skipped without copies (only headers are walked): enough to count messages at millions per second.
 */
export class ServerFrameReader {
  messages = 0;
  bytes = 0;
  private header = Buffer.alloc(14);
  private headerLen = 0;
  private skip = 0;
  private opcode = 0;
  private keep = false;
  private parts: Buffer[] = [];
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;

  constructor(
    /** Hand over payloads of messages up to this many bytes (Infinity: all); control frames always. */
    private readonly keepUpTo: number,
    /** Complete messages (keepPayloads) and every control frame. */
    private readonly onMessage: (opcode: number, payload: Buffer) => void = () => {},
  ) {}

  feed(chunk: Buffer): void {
    this.bytes += chunk.length;
    let i = 0;
    const len = chunk.length;
    while (i < len) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - i);
        if (this.keep) this.parts.push(chunk.subarray(i, i + n));
        i += n;
        this.skip -= n;
        if (this.skip === 0) this.endFrame();
        continue;
      }
      this.header[this.headerLen++] = chunk[i++]!;
      if (this.headerLen < 2) continue;
      const b1 = this.header[1]! & 0x7f;
      const need = 2 + (b1 === 126 ? 2 : b1 === 127 ? 8 : 0) + ((this.header[1]! & 0x80) !== 0 ? 4 : 0);
      if (this.headerLen < need) continue;
      const size = b1 < 126 ? b1 : b1 === 126 ? this.header.readUInt16BE(2) : Number(this.header.readBigUInt64BE(2));
      this.opcode = this.header[0]! & 0x0f;
      this.keep = this.opcode >= 8 || size <= this.keepUpTo || this.fragments.length > 0;
      this.headerLen = 0;
      this.skip = size;
      if (size === 0) this.endFrame();
    }
  }

  private endFrame(): void {
    const fin = (this.header[0]! & 0x80) !== 0;
    const op = this.opcode;
    if (op >= 8) {
      this.onMessage(op, this.take());
      return;
    }
    if (!fin || op === OPCODE.continuation) {
      // Fragmented message: collect until the final continuation frame.
      if (op !== OPCODE.continuation) this.fragmentOpcode = op;
      if (this.keep) this.fragments.push(this.take());
      if (!fin) return;
      this.messages++;
      if (this.fragments.length > 0) {
        const whole = Buffer.concat(this.fragments);
        this.fragments = [];
        this.onMessage(this.fragmentOpcode, whole);
      }
      return;
    }
    this.messages++;
    if (this.keep) this.onMessage(op, this.take());
  }

  private take(): Buffer {
    const p = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    return p;
  }
}

/** Answers pings with pongs and reports close frames; used by every raw socket that stays open. */
export function controlHandler(socket: Socket, onClose?: (code: number) => void): (opcode: number, payload: Buffer) => boolean {
  return (opcode, payload) => {
    if (opcode === OPCODE.ping) {
      if (!socket.destroyed) socket.write(maskedFrame(OPCODE.pong, payload));
      return true;
    }
    if (opcode === OPCODE.close) {
      onClose?.(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
      return true;
    }
    return opcode === OPCODE.pong;
  };
}
