/**
 * The write path to InfluxDB 1.x: line protocol POSTed to /write?db=…&rp=…&precision=ms over a
 * keep-alive agent, and the answer sorted into what the writer does next. (The `influx` package
 * serialises points itself at ~2.4× the CPU; see STORAGE.md. It is used for admin and queries.)
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { StorageError } from './errors.js';

export interface InfluxTarget {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** Path prefix before /write and /query ('' or '/influx' behind a proxy). */
  basePath: string;
  database: string;
  username?: string;
  password?: string;
}

/** What became of one POST. */
export type WriteOutcome =
  /** Stored; `refused` points of it were refused for good (a partial write, with `error`). */
  | { kind: 'stored'; refused: number; error?: StorageError }
  /** Refused as a whole (400/413): split it to find the bad points, or count a single one as refused. */
  | { kind: 'refused'; error: StorageError }
  /** Nothing stored; try again later. `schema`: the database is missing and must be created first. */
  | { kind: 'retry'; error: StorageError; schema?: boolean };

export function parseInfluxUrl(url: string): InfluxTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StorageError('STORAGE_CONFIG', `--influx "${redact(url)}" is not a URL (expected http://host:8086/database)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new StorageError('STORAGE_CONFIG', `--influx "${redact(url)}" must start with http:// or https://`);
  }
  const parts = u.pathname.split('/').filter((p) => p !== '');
  const database = decodeURIComponent(parts.pop() ?? '');
  if (!database) throw new StorageError('STORAGE_CONFIG', `--influx "${redact(url)}" names no database (expected http://host:8086/database)`);
  return {
    protocol: u.protocol,
    hostname: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 8086,
    basePath: parts.length ? `/${parts.join('/')}` : '',
    database,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

/** The URL without its password, for logs and messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

export class InfluxWriteClient {
  private readonly agent: HttpAgent;
  private readonly live = new Set<ClientRequest>();
  private readonly path: string;
  private readonly auth: string | undefined;
  private closed = false;

  constructor(
    readonly target: InfluxTarget,
    retentionPolicy: string,
    private readonly timeoutMs: number,
    maxSockets: number,
  ) {
    const Agent = target.protocol === 'https:' ? HttpsAgent : HttpAgent;
    this.agent = new Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    const q = new URLSearchParams({ db: target.database, rp: retentionPolicy, precision: 'ms' });
    this.path = `${target.basePath}/write?${q}`;
    this.auth = target.username !== undefined ? `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}` : undefined;
  }

  get where(): string {
    return `${this.target.protocol}//${this.target.hostname}:${this.target.port}`;
  }

  /** POSTs one body of line protocol. Never rejects. */
  send(body: Buffer): Promise<WriteOutcome> {
    if (this.closed) return Promise.resolve({ kind: 'retry', error: new StorageError('STORAGE_UNREACHABLE', 'the storage is closed') });
    return new Promise((resolve) => {
      let settled = false;
      const done = (o: WriteOutcome): void => {
        if (settled) return;
        settled = true;
        this.live.delete(req);
        resolve(o);
      };
      const request = this.target.protocol === 'https:' ? httpsRequest : httpRequest;
      const headers: Record<string, string | number> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length };
      if (this.auth) headers.authorization = this.auth;
      const req = request(
        { agent: this.agent, method: 'POST', hostname: this.target.hostname, port: this.target.port, path: this.path, headers },
        (res) => readAnswer(res, (status, text) => done(classify(status, text, this.where))),
      );
      this.live.add(req);
      req.setTimeout(this.timeoutMs, () => {
        req.destroy();
        done({ kind: 'retry', error: new StorageError('STORAGE_TIMEOUT', `InfluxDB at ${this.where} did not answer a write within ${this.timeoutMs} ms`) });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        done({ kind: 'retry', error: new StorageError('STORAGE_UNREACHABLE', `InfluxDB at ${this.where}: ${err.code ?? ''} ${err.message}`.replace('  ', ' '), { cause: err }) });
      });
      req.end(body);
    });
  }

  /** Aborts requests in flight and closes idle connections. */
  close(): void {
    this.closed = true;
    for (const r of this.live) r.destroy();
    this.live.clear();
    this.agent.destroy();
  }
}

function readAnswer(res: IncomingMessage, cb: (status: number, text: string) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    if (text.length < 65536) text += c;
  });
  res.on('end', () => cb(res.statusCode ?? 0, text));
  res.on('error', () => cb(0, text));
}

function errorText(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 500);
}

/** Sorts an HTTP answer to a write into stored / refused / retry. */
export function classify(status: number, text: string, where: string): WriteOutcome {
  if (status >= 200 && status < 300) return { kind: 'stored', refused: 0 };
  const msg = errorText(text);
  if (status === 400 && msg.startsWith('partial write')) {
    // "partial write: field type conflict: … dropped=2" or "partial write: unable to parse '…': … dropped=0"
    const dropped = Number(/dropped=(\d+)/.exec(msg)?.[1] ?? 0);
    const unparsed = msg.split('unable to parse').length - 1;
    return { kind: 'stored', refused: Math.max(1, dropped + unparsed), error: new StorageError('STORAGE_PARTIAL_WRITE', `InfluxDB refused some points: ${msg}`) };
  }
  if (status === 400 || status === 413) return { kind: 'refused', error: new StorageError('STORAGE_REJECTED', `InfluxDB refused a write (HTTP ${status}): ${msg}`) };
  if (status === 404 && msg.includes('database not found')) {
    return { kind: 'retry', schema: true, error: new StorageError('STORAGE_DB_NOT_FOUND', `InfluxDB at ${where}: ${msg}`) };
  }
  if (status === 401 || status === 403) return { kind: 'retry', error: new StorageError('STORAGE_UNAUTHORIZED', `InfluxDB at ${where} refused the credentials (HTTP ${status}): ${msg}`) };
  if (status === 0) return { kind: 'retry', error: new StorageError('STORAGE_UNREACHABLE', `InfluxDB at ${where} closed the connection mid-answer`) };
  return { kind: 'retry', error: new StorageError('STORAGE_SERVER_ERROR', `InfluxDB at ${where} answered HTTP ${status}: ${msg}`) };
}
