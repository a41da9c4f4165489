/**
 * The /live client (gateway/LIVE.md): one WebSocket, the page's subscriptions, automatic reconnect
 * with backoff and jitter, and gap-free device streams. It remembers, per `device:<id>` stream, the
 * highest contiguous `seq` applied; after a reconnect, a `missed` message or a jump in `seq` it
 * subscribes again with `resume`, drops replayed duplicates, and reports the answers (`resumed`),
 * so on `too_old` the page reloads the gap from the history API.
 */
import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import type { Alarm, CommandRecord, DeviceMessage, DeviceSummary, DeviceTypeSpec, GatewayStats, LiveMessage } from './types.js';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'unauthorized';

export interface ConnectionInfo {
  state: ConnectionState;
  /** When the next attempt starts (ms since epoch), while waiting to reconnect. */
  retryAt?: number;
  /** Failed attempts in a row. */
  failures: number;
  /** Why the last connection ended or failed. */
  reason?: string;
}

export interface LiveEvents {
  connection: [ConnectionInfo];
  /** The gateway's clock minus ours, from `hello`. */
  hello: [{ clockOffsetMs: number; flushMs: number }];
  fleet: [{ full: boolean; devices: DeviceSummary[]; removed: string[] }];
  stats: [GatewayStats];
  device: [DeviceMessage];
  command: [CommandRecord];
  /** The `alarms` stream: every alarm not cleared (`full`, on subscribe), then each one as it changes. */
  alarm: [{ full: boolean; alarms: Alarm[] }];
  /** The device types in force, on subscribe and after each reload of the gateway's types file. */
  types: [readonly DeviceTypeSpec[]];
  /** The answer to a resume: `ok` false when the gateway could not replay the gap (ring too short, or it restarted): reload it from history. */
  resumed: [{ deviceId: string; ok: boolean; reason: string }];
  /** The gateway dropped messages for this client (it fell behind); `commands` listeners should reload. */
  missed: [{ count: number; streams: string[] }];
  /** A reconnect succeeded: views that keep state from other sources may refresh it. */
  reconnected: [];
  protocolError: [{ code: string; message: string }];
}

interface Cursor {
  /** Highest seq applied with nothing missing below it (since the first one seen). */
  contig: number | undefined;
  /** Applied seqs above `contig` (after a jump), waiting for the hole below them to fill. */
  ahead: Set<number>;
  /** When a resume for this stream was asked for (0: none pending). A lost answer does not block the next one for long. */
  resumingSince: number;
}

export interface LiveOptions {
  /** Base URL of the gateway, e.g. location.origin. */
  origin: string;
  /** Asked after a connection failed before opening: resolves true when the session is refused (HTTP 401). */
  isUnauthorized: () => Promise<boolean>;
  /** Reconnect when nothing arrived for this long (the stats stream ticks every second). */
  silenceMs?: number;
}

const MAX_AHEAD = 2000;
/** How long an unanswered resume holds back asking again. */
const RESUME_WAIT_MS = 5000;
/** Failed attempts in a row after which the indicator says "offline" rather than "reconnecting". */
const OFFLINE_AFTER = 3;

export class LiveClient extends Emitter<LiveEvents> {
  /** The current WebSocket (tests close it to simulate a cut). */
  socket: WebSocket | undefined;
  /** What happened to the connection so far (shown to tests and in the console). */
  readonly counts = { connects: 0, resumesOk: 0, resumesTooOld: 0, missed: 0, duplicatesDropped: 0 };
  /** The gateway process whose seqs the cursors count (from its hello). */
  private bootId: string | undefined;
  private readonly streams = new Set<string>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly backoff = new Backoff(500, 10_000);
  private info: ConnectionInfo = { state: 'connecting', failures: 0 };
  private retryTimer: number | undefined;
  private silenceTimer: number | undefined;
  private everConnected = false;
  private stopped = false;
  private readonly silenceMs: number;

  constructor(private readonly opts: LiveOptions) {
    super();
    this.silenceMs = opts.silenceMs ?? 15_000;
    window.addEventListener('online', () => this.retryNow());
    window.addEventListener('offline', () => {
      if (this.info.state !== 'connected') this.setState({ ...this.info, state: 'offline', reason: 'the browser is offline' });
    });
  }

  get connection(): ConnectionInfo {
    return this.info;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.silenceTimer);
    const s = this.socket;
    this.socket = undefined;
    s?.close(1000, 'page closed');
  }

  /** Skips the wait before the next attempt. */
  retryNow(): void {
    if (this.stopped || this.info.state === 'unauthorized' || this.info.state === 'connected') return;
    if (this.socket && this.socket.readyState === WebSocket.CONNECTING) return;
    window.clearTimeout(this.retryTimer);
    this.backoff.reset();
    this.open();
  }

  subscribe(...streams: string[]): void {
    const fresh = streams.filter((s) => !this.streams.has(s));
    if (fresh.length === 0) return;
    for (const s of fresh) {
      this.streams.add(s);
      if (s.startsWith('device:')) this.cursors.set(s, { contig: undefined, ahead: new Set(), resumingSince: 0 });
    }
    this.send({ op: 'subscribe', streams: fresh });
  }

  unsubscribe(...streams: string[]): void {
    const gone = streams.filter((s) => this.streams.delete(s));
    for (const s of gone) this.cursors.delete(s);
    if (gone.length > 0) this.send({ op: 'unsubscribe', streams: gone });
  }

  /** The last contiguous seq applied per device stream (for tests and diagnostics). */
  lastSeq(stream: string): number | undefined {
    return this.cursors.get(stream)?.contig;
  }

  private send(msg: unknown): void {
    const s = this.socket;
    if (s && s.readyState === WebSocket.OPEN) s.send(JSON.stringify(msg));
    // When closed, the next open subscribes to everything in `streams` anyway.
  }

  private open(): void {
    if (this.stopped) return;
    // The browser sends the session cookie and Origin with the upgrade: no secret in the URL.
    const url = new URL('/live', this.opts.origin);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.info.state !== 'offline') this.setState({ state: this.everConnected ? 'reconnecting' : 'connecting', failures: this.backoff.failures, reason: this.info.reason });
    let opened = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.failed(`cannot open the live connection: ${(err as Error).message}`, false);
      return;
    }
    this.socket = ws;
    ws.onopen = () => {
      if (this.socket !== ws) return;
      opened = true;
      const wasConnected = this.everConnected;
      this.everConnected = true;
      this.backoff.reset();
      this.counts.connects++;
      this.setState({ state: 'connected', failures: 0 });
      this.resubscribeAll();
      this.armSilence();
      if (wasConnected) this.emit('reconnected');
    };
    ws.onmessage = (ev) => {
      if (this.socket !== ws || typeof ev.data !== 'string') return;
      this.armSilence();
      let msg: LiveMessage;
      try {
        msg = JSON.parse(ev.data) as LiveMessage;
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      this.socket = undefined;
      window.clearTimeout(this.silenceTimer);
      const reason = opened ? `connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})` : 'the gateway refused or did not answer the live connection';
      this.failed(reason, !opened);
    };
  }

  private failed(reason: string, beforeOpen: boolean): void {
    if (this.stopped) return;
    const schedule = () => {
      const delay = this.backoff.next();
      const failures = this.backoff.failures;
      const offline = !navigator.onLine || failures > OFFLINE_AFTER;
      this.setState({ state: offline ? 'offline' : this.everConnected ? 'reconnecting' : 'connecting', retryAt: Date.now() + delay, failures, reason });
      window.clearTimeout(this.retryTimer);
      this.retryTimer = window.setTimeout(() => this.open(), delay);
    };
    if (!beforeOpen) return schedule();
    // A browser cannot see the HTTP status of a refused upgrade: ask the API whether the session is the problem.
    this.opts.isUnauthorized().then(
      (unauthorized) => {
        if (unauthorized) {
          this.stopped = true;
          this.setState({ state: 'unauthorized', failures: this.backoff.failures, reason: 'the login session has ended' });
        } else schedule();
      },
      () => schedule(),
    );
  }

  private armSilence(): void {
    window.clearTimeout(this.silenceTimer);
    this.silenceTimer = window.setTimeout(() => {
      // Nothing for too long (a sleeping laptop, a dead NAT entry): start over.
      this.socket?.close(4000, 'silent');
    }, this.silenceMs);
  }

  private setState(info: ConnectionInfo): void {
    this.info = info;
    this.emit('connection', info);
  }

  private resubscribeAll(): void {
    if (this.streams.size === 0) return;
    const resume: Record<string, number> = {};
    for (const [stream, c] of this.cursors) {
      c.ahead.clear();
      c.resumingSince = c.contig !== undefined ? Date.now() : 0;
      if (c.contig !== undefined) resume[stream] = c.contig;
    }
    const msg: { op: 'subscribe'; streams: string[]; resume?: Record<string, number>; bootId?: string } = { op: 'subscribe', streams: [...this.streams] };
    if (Object.keys(resume).length > 0) {
      msg.resume = resume;
      // The process that counted these seqs: another one (a restart, another worker) answers too_old.
      if (this.bootId) msg.bootId = this.bootId;
    }
    this.send(msg);
  }

  /** Asks the gateway to replay a device stream from the last contiguous seq applied. */
  private resume(stream: string): void {
    const c = this.cursors.get(stream);
    if (!c) return;
    if (c.contig === undefined) {
      // Messages were missed before any arrived since the last start-over: there is no seq to
      // resume from, so the page fills the gap from history, as after too_old.
      this.emit('resumed', { deviceId: stream.slice('device:'.length), ok: false, reason: 'nothing applied yet to resume from' });
      return;
    }
    if (c.resumingSince !== 0 && Date.now() - c.resumingSince < RESUME_WAIT_MS) return;
    c.resumingSince = Date.now();
    this.send({ op: 'subscribe', streams: [stream], resume: { [stream]: c.contig }, ...(this.bootId ? { bootId: this.bootId } : {}) });
  }

  private handle(msg: LiveMessage): void {
    switch (msg.type) {
      case 'hello':
        if (typeof msg.bootId === 'string') this.bootId = msg.bootId;
        this.emit('hello', { clockOffsetMs: typeof msg.serverTime === 'number' ? msg.serverTime - Date.now() : 0, flushMs: msg.flushMs ?? 100 });
        return;
      case 'fleet':
        if (this.streams.has('fleet')) this.emit('fleet', { full: msg.full === true, devices: msg.devices ?? [], removed: msg.removed ?? [] });
        return;
      case 'stats':
        this.emit('stats', msg.stats ?? {});
        return;
      case 'command':
        if (msg.command) this.emit('command', msg.command);
        return;
      case 'alarm':
        if (this.streams.has('alarms') && Array.isArray(msg.alarms)) this.emit('alarm', { full: msg.full === true, alarms: msg.alarms });
        return;
      case 'types':
        if (Array.isArray(msg.types)) this.emit('types', msg.types);
        return;
      case 'device':
        return this.device(msg);
      case 'resume':
        return this.resumed(msg.stream, msg.status);
      case 'missed':
        this.counts.missed += msg.count ?? 0;
        for (const s of msg.streams ?? []) if (s.startsWith('device:')) this.resume(s);
        this.emit('missed', { count: msg.count, streams: msg.streams ?? [] });
        return;
      case 'error':
        console.warn(`live: ${msg.code}: ${msg.message}`);
        this.emit('protocolError', { code: msg.code, message: msg.message });
        return;
      default:
        return;
    }
  }

  private device(msg: DeviceMessage): void {
    const stream = `device:${msg.id}`;
    const c = this.cursors.get(stream);
    if (!c) return; // unsubscribed meanwhile
    const seq = msg.seq;
    if (typeof seq !== 'number') {
      this.emit('device', msg);
      return;
    }
    if (c.contig === undefined) {
      c.contig = seq;
    } else if (seq <= c.contig || c.ahead.has(seq)) {
      this.counts.duplicatesDropped++;
      return; // replayed twice (resume overlaps what arrived live)
    } else if (seq === c.contig + 1) {
      c.contig = seq;
      while (c.ahead.delete(c.contig + 1)) c.contig++;
    } else {
      // A jump: messages between were dropped for us. Apply this one, fetch the hole.
      c.ahead.add(seq);
      if (c.ahead.size > MAX_AHEAD) {
        c.contig = Math.max(...c.ahead);
        c.ahead.clear();
        this.emit('resumed', { deviceId: msg.id, ok: false, reason: 'too many messages missing' });
      } else this.resume(stream);
    }
    this.emit('device', msg);
  }

  private resumed(stream: string, status: 'ok' | 'too_old'): void {
    const c = this.cursors.get(stream);
    if (!c) return;
    c.resumingSince = 0;
    const deviceId = stream.slice('device:'.length);
    if (status === 'too_old') {
      // The gap cannot be replayed (or the gateway restarted and its seqs began again): start over
      // from whatever comes next, and let the page fill the gap from history.
      c.contig = undefined;
      c.ahead.clear();
      this.counts.resumesTooOld++;
      this.emit('resumed', { deviceId, ok: false, reason: 'too_old' });
    } else {
      this.counts.resumesOk++;
      this.emit('resumed', { deviceId, ok: true, reason: status });
    }
  }
}
