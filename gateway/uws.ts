/**
 * The one file that imports uWebSockets.js. Everything else sees the small interfaces below:
 * an HTTP request snapshot, a reply, and a socket connection (a class routes extend). uWS request
 * objects and message buffers are only valid during the callback, so this file copies what
 * callers keep; an upgrade's request is read in place, since upgrade() decides without waiting.
 */
import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';
import { GatewayError } from './errors.js';

const require = createRequire(import.meta.url);

type Uws = typeof UwsTypes;
let uws: Uws | undefined;

/**
 * Loads uWS and refuses the package's silent `ws` fallback, which is several times slower:
 * the native module's App() is a `uWS.App`, the fallback's is not.
 */
export function loadUws(allowFallback: boolean): { native: boolean } {
  if (!uws) {
    const warn = console.warn;
    let fallbackWarning = '';
    // The package prints its own fallback warning with console.warn; capture it for our message.
    console.warn = (...args: unknown[]) => {
      fallbackWarning += args.map(String).join(' ') + '\n';
    };
    try {
      uws = require('uWebSockets.js') as Uws;
    } finally {
      console.warn = warn;
    }
    const native = uws.App().constructor?.name === 'uWS.App';
    if (!native && !allowFallback) {
      uws = undefined;
      throw new GatewayError(
        'UWS_NOT_NATIVE',
        'uWebSockets.js did not load its native binary and would fall back to a slow ws shim ' +
          `(Node ${process.versions.node}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}; native builds exist for Node 16, 18 and 20 on Linux/macOS/Windows). ` +
          'Run on Node 20, or pass --allow-uws-fallback to run anyway at reduced speed.' +
          (fallbackWarning ? `\nLoader said: ${fallbackWarning.trim()}` : ''),
      );
    }
    nativeLoaded = native;
  }
  return { native: nativeLoaded };
}
let nativeLoaded = false;

function mod(): Uws {
  if (!uws) throw new GatewayError('UWS_NOT_LOADED', 'loadUws() must be called before the server is created');
  return uws;
}

/** What a handler may read of an HTTP request; captured before the handler can await. */
export interface RequestInfo {
  method: string;
  path: string;
  query: URLSearchParams;
  /** One query parameter, as `query.get(name)` gives it (without parsing the whole query where it can). */
  param(name: string): string | null;
  header(lowerCaseName: string): string;
  remoteAddress: string;
  /** Whether it came over TLS (the session cookie is then marked Secure). */
  secure: boolean;
}

/**
 * The first value of `name` in a raw query string, as URLSearchParams.get() gives it. A query
 * with nothing encoded (no `%`, no `+`) is read in place; any other is parsed in full.
 */
export function queryParam(query: string, name: string): string | null {
  if (query.includes('%') || query.includes('+')) return new URLSearchParams(query).get(name);
  for (let i = 0; i < query.length; ) {
    let end = query.indexOf('&', i);
    if (end === -1) end = query.length;
    let eq = query.indexOf('=', i);
    if (eq === -1 || eq > end) eq = end;
    if (eq - i === name.length && query.startsWith(name, i)) return eq === end ? '' : query.slice(eq + 1, end);
    i = end + 1;
  }
  return null;
}

/** A request's path (uWS's getUrl() has no query; the ws fallback's has). */
function pathOf(req: UwsTypes.HttpRequest): string {
  const path = req.getUrl();
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** A request's raw query (the ws fallback's getQuery() throws on relative URLs; its getUrl() keeps the query). */
function queryOf(req: UwsTypes.HttpRequest): string {
  try {
    return req.getQuery() ?? '';
  } catch {
    const url = req.getUrl();
    const q = url.indexOf('?');
    return q === -1 ? '' : url.slice(q + 1);
  }
}

/**
 * A WebSocket upgrade's request, read in place instead of copied: a route's upgrade() runs inside
 * uWS's callback and does not wait, and a storm of devices reconnecting after a restart should make
 * little garbage. One per socket route, aimed at each upgrade in turn; valid during upgrade() only.
 */
class UpgradeRequest implements RequestInfo {
  remoteAddress = '';
  private req: UwsTypes.HttpRequest | undefined;
  private rawQuery: string | undefined;
  private params: URLSearchParams | undefined;
  constructor(readonly secure: boolean) {}

  aim(req: UwsTypes.HttpRequest | undefined, remoteAddress: string): void {
    this.req = req;
    this.remoteAddress = remoteAddress;
    this.rawQuery = undefined;
    this.params = undefined;
  }

  get method(): string {
    return this.request().getMethod().toUpperCase();
  }
  get path(): string {
    return pathOf(this.request());
  }
  get query(): URLSearchParams {
    return (this.params ??= new URLSearchParams((this.rawQuery ??= queryOf(this.request()))));
  }
  param(name: string): string | null {
    return this.params ? this.params.get(name) : queryParam((this.rawQuery ??= queryOf(this.request())), name);
  }
  header(lowerCaseName: string): string {
    return this.request().getHeader(lowerCaseName);
  }

  private request(): UwsTypes.HttpRequest {
    if (this.req === undefined) throw new Error('an upgrade request is read during the route\'s upgrade() only');
    return this.req;
  }
}

/** A reply that knows whether the client went away, and corks its writes. */
export class Reply {
  aborted = false;
  done = false;
  /** Headers a handler added before the answer (a renewed session cookie). */
  private extra: Record<string, string> | undefined;
  constructor(
    private readonly res: UwsTypes.HttpResponse,
    /** A HEAD request: answers carry the headers and the length of the body a GET would get, not the body. */
    private readonly head = false,
    /** The client asked for `Connection: close` (uWS honours it in end(), not in endWithoutBody()). */
    private readonly closeAfter = false,
  ) {
    res.onAborted(() => {
      this.aborted = true;
    });
  }

  /** Adds a header to whatever answer this reply gives (send, sendAndClose, startStream). */
  setHeader(lowerCaseName: string, value: string): void {
    (this.extra ??= {})[lowerCaseName] = value;
  }

  send(status: number, headers: Record<string, string>, body: string | Uint8Array = ''): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      if (this.head && typeof this.res.endWithoutBody === 'function') {
        this.res.endWithoutBody(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength, this.closeAfter);
      } else {
        this.res.end(body);
      }
    });
  }

  private writeHead(status: number, headers: Record<string, string>): void {
    this.res.writeStatus(statusLine(status));
    for (const k in headers) this.res.writeHeader(k, headers[k]!);
    for (const k in this.extra) this.res.writeHeader(k, this.extra[k]!);
  }

  /** Answers and closes the TCP connection, so a keep-alive client cannot send more on it. */
  sendAndClose(status: number, headers: Record<string, string>, body: string): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      this.res.end(body, true);
    });
  }

  /** Starts a streamed response (Server-Sent Events and the like). */
  startStream(status: number, headers: Record<string, string>): void {
    if (this.aborted || this.done) return;
    this.res.cork(() => {
      this.writeHead(status, headers);
      this.res.write('');
    });
  }

  /** Writes a chunk to a streamed response; false when it had to be buffered (backpressure) or the client is gone. */
  write(chunk: string): boolean {
    if (this.aborted || this.done) return false;
    let ok = false;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    return ok && !this.aborted;
  }

  /** Called once when a backpressured streamed response can take more. */
  onWritable(cb: () => void): void {
    if (this.aborted || this.done) return;
    this.res.onWritable(() => {
      cb();
      return true;
    });
  }

  end(): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => this.res.end());
  }

  /** Bytes queued for this response that the kernel has not taken yet. */
  bufferedAmount(): number {
    return this.aborted || this.done ? 0 : this.res.getWriteOffset();
  }

  onClose(cb: () => void): void {
    this.res.onAborted(() => {
      this.aborted = true;
      cb();
    });
  }

  /** Reads the request body, refusing more than maxBytes. Resolves undefined if the body is too large. */
  readBody(maxBytes: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      this.res.onData((chunk, isLast) => {
        if (!tooLarge) {
          size += chunk.byteLength;
          if (size > maxBytes) tooLarge = true;
          else chunks.push(Buffer.from(chunk.slice(0)));
        }
        if (isLast) resolve(tooLarge ? undefined : Buffer.concat(chunks));
      });
    });
  }
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};
function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`;
}

/** Result of checking an upgrade request: either the connection object for the socket, or an HTTP refusal. */
export type UpgradeDecision<C> = { accept: C } | { refuse: { status: number; headers?: Record<string, string>; body: string } };

/**
 * uWS copies its user data's fields onto its own socket object (getUserData() returns the socket):
 * one field, the connection, keeps that copy small.
 */
interface UserData {
  conn: SocketConnection;
}

/**
 * A live socket as the rest of the gateway sees it. A route makes one per accepted upgrade (a
 * subclass with its own per-connection state), so a connection costs one object besides uWS's own.
 */
export class SocketConnection {
  closed = false;
  /** The uWS socket, set when it opens; nothing is sent before. */
  private ws: UwsTypes.WebSocket<UserData> | undefined;
  constructor(readonly remoteAddress: string) {}

  /** @internal The server's: the socket of this connection opened. */
  static attach(conn: SocketConnection, ws: UwsTypes.WebSocket<UserData>): void {
    conn.ws = ws;
  }

  /** 'sent', 'queued' (buffered, will drain) or 'dropped' (over maxBackpressure, not sent). */
  send(bytes: Uint8Array | string, binary = true): 'sent' | 'queued' | 'dropped' {
    const ws = this.ws;
    if (ws === undefined || this.closed) return 'dropped';
    const r = ws.send(bytes, binary, false);
    return r === 1 ? 'sent' : r === 0 ? 'queued' : 'dropped';
  }
  /** Graceful close with a code and reason (sends a close frame). */
  end(code: number, reason: string): void {
    if (!this.closed) this.ws?.end(code, reason);
  }
  /** Closes the TCP connection at once. */
  terminate(): void {
    if (!this.closed) this.ws?.close();
  }
  bufferedAmount(): number {
    return this.ws === undefined || this.closed ? 0 : this.ws.getBufferedAmount();
  }
  subscribe(topic: string): void {
    if (!this.closed) this.ws?.subscribe(topic);
  }
  unsubscribe(topic: string): void {
    if (!this.closed) this.ws?.unsubscribe(topic);
  }
}

/** A connection that carries a route's data object. */
export class Connection<T> extends SocketConnection {
  constructor(
    remoteAddress: string,
    readonly data: T,
  ) {
    super(remoteAddress);
  }
}

export interface SocketRoute<C extends SocketConnection> {
  maxPayloadLength: number;
  idleTimeoutSeconds: number;
  maxBackpressure: number;
  /** `info` is read in place: valid during the call only (decide without waiting). */
  upgrade(info: RequestInfo): UpgradeDecision<C>;
  open(conn: C): void;
  /** `bytes` is only valid during the call: copy what is kept. */
  message(conn: C, bytes: Uint8Array, binary: boolean): void;
  drain?(conn: C): void;
  /** A pong (answer to the automatic ping) arrived: the peer is alive though silent. */
  activity?(conn: C): void;
  close(conn: C, code: number, reason: string): void;
}

/** Request headers handlers may read; uWS requests are gone after the first await. */
export const SNAPSHOT_HEADERS = ['authorization', 'connection', 'cookie', 'host', 'content-type', 'content-length', 'accept', 'accept-encoding', 'if-none-match', 'last-event-id', 'origin', 'sec-fetch-site', 'user-agent'] as const;

export type HttpHandler = (req: RequestInfo, reply: Reply) => void;

/** uSockets listen options: LIBUS_LISTEN_DEFAULT (SO_REUSEPORT) and LIBUS_LISTEN_EXCLUSIVE_PORT. */
const LISTEN_SHARED = 0;
const LISTEN_EXCLUSIVE = 1;

export interface ServerOptions {
  tls?: { certFile: string; keyFile: string };
}

/** An HTTP + WebSocket server on uWS with an explicit lifecycle. */
export class HttpServer {
  private readonly app: UwsTypes.TemplatedApp;
  private listenSocket: UwsTypes.us_listen_socket | undefined;
  private readonly decoder = new TextDecoder();
  private lastRemote = '';
  private readonly secure: boolean;
  port = 0;

  constructor(opts: ServerOptions = {}) {
    const u = mod();
    this.secure = opts.tls !== undefined;
    this.app = opts.tls ? u.SSLApp({ cert_file_name: opts.tls.certFile, key_file_name: opts.tls.keyFile }) : u.App();
  }

  /** Routes every HTTP request (any method, any path) to one handler; routing is the caller's. */
  http(handler: HttpHandler): void {
    this.app.any('/*', (res, req) => {
      const info = this.snapshot(req, res);
      const reply = new Reply(res, info.method === 'HEAD', info.method === 'HEAD' && /\bclose\b/i.test(info.header('connection')));
      try {
        handler(info, reply);
      } catch (err) {
        reply.send(500, { 'content-type': 'application/json' }, JSON.stringify({ error: { code: 'INTERNAL', message: String(err) } }));
      }
    });
  }

  socket<C extends SocketConnection>(pattern: string, route: SocketRoute<C>): void {
    const decoder = this.decoder;
    const request = new UpgradeRequest(this.secure);
    this.app.ws<UserData>(pattern, {
      compression: mod().DISABLED,
      maxPayloadLength: route.maxPayloadLength,
      idleTimeout: route.idleTimeoutSeconds,
      maxBackpressure: route.maxBackpressure,
      closeOnBackpressureLimit: 0,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        request.aim(req, this.remote(res));
        let decision: UpgradeDecision<C>;
        try {
          decision = route.upgrade(request);
        } finally {
          request.aim(undefined, '');
        }
        if ('refuse' in decision) {
          const { status, headers = {}, body } = decision.refuse;
          res.cork(() => {
            res.writeStatus(statusLine(status));
            res.writeHeader('content-type', 'application/json');
            for (const k in headers) res.writeHeader(k, headers[k]!);
            res.end(body);
          });
          return;
        }
        res.upgrade<UserData>({ conn: decision.accept }, key, protocol, extensions, context);
      },
      open: (ws) => {
        const conn = ws.getUserData().conn as C;
        SocketConnection.attach(conn, ws);
        route.open(conn);
      },
      message: (ws, message, isBinary) => {
        route.message(ws.getUserData().conn as C, new Uint8Array(message), isBinary);
      },
      drain: (ws) => {
        route.drain?.(ws.getUserData().conn as C);
      },
      pong: (ws) => {
        route.activity?.(ws.getUserData().conn as C);
      },
      close: (ws, code, message) => {
        const conn = ws.getUserData().conn as C;
        conn.closed = true;
        route.close(conn, code, message.byteLength ? decoder.decode(message) : '');
      },
    });
  }

  /** Publishes to every socket subscribed to `topic`. */
  publish(topic: string, message: Uint8Array | string, binary: boolean): boolean {
    return this.app.publish(topic, message, binary, false);
  }

  numSubscribers(topic: string): number {
    return this.app.numSubscribers(topic);
  }

  /**
   * Listens on host:port. uWS sets SO_REUSEPORT by default, so a second server on a port in use
   * would start and share the connections at random: unless `shared` (the workers of one
   * --workers gateway, which share the port on purpose), the port is taken exclusively and a
   * port in use fails here. `flag` names the setting the error tells the user to change.
   */
  listen(host: string, port: number, opts: { shared?: boolean; flag?: string } = {}): Promise<number> {
    const flag = opts.flag ?? '--port';
    return new Promise((resolve, reject) => {
      const done = (socket: UwsTypes.us_listen_socket | false) => {
        if (!socket) {
          reject(
            new GatewayError(
              'LISTEN_FAILED',
              `could not listen on ${host}:${port}: the port is in use (another gateway?) or ${host} is not an address of this machine; stop the other process or choose another port with ${flag}`,
            ),
          );
          return;
        }
        this.listenSocket = socket;
        this.port = mod().us_socket_local_port(socket as unknown as UwsTypes.us_socket);
        resolve(this.port);
      };
      // The typings only list (port, options, cb); the binding also takes (host, port, options, cb).
      const listen = this.app.listen as unknown as (h: string, p: number, o: number, cb: typeof done) => void;
      listen.call(this.app, host, port, opts.shared ? LISTEN_SHARED : LISTEN_EXCLUSIVE, done);
    });
  }

  /** Stops accepting connections; open ones stay until their owners close them. */
  stopListening(): void {
    if (this.listenSocket) {
      mod().us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
  }

  private snapshot(req: UwsTypes.HttpRequest, res: UwsTypes.HttpResponse): RequestInfo {
    // Only the headers the gateway reads are copied (req.forEach is also missing from the ws fallback).
    const headers = new Map<string, string>();
    for (const name of SNAPSHOT_HEADERS) {
      const v = req.getHeader(name);
      if (v) headers.set(name, v);
    }
    const query = new URLSearchParams(queryOf(req));
    return {
      method: req.getMethod().toUpperCase(),
      path: pathOf(req),
      query,
      param: (name) => query.get(name),
      header: (name) => headers.get(name) ?? '',
      remoteAddress: this.remote(res),
      secure: this.secure,
    };
  }

  private remote(res: UwsTypes.HttpResponse): string {
    let remoteAddress = '';
    try {
      remoteAddress = this.decoder.decode(res.getRemoteAddressAsText());
      // Connections kept open keep their address: one copy for a run of them from one place (a NAT, a proxy).
      if (remoteAddress === this.lastRemote) remoteAddress = this.lastRemote;
      else this.lastRemote = remoteAddress;
    } catch {
      // Not available on the ws fallback.
    }
    return remoteAddress;
  }
}
