import { EventEmitter } from 'node:events';
import { decodeFrame } from '../codec/decode.js';
import { encodeCommandResult, encodeTelemetry } from '../codec/encode.js';
import { CLOSE_CODES, FrameError, errorCodeName } from '../codec/errors.js';
import { FrameFlag, FrameType, type CommandFrame, type CommandStatus } from '../codec/types.js';
import { Backoff } from './backoff.js';
import { Batch, checkReading, checkTime, type DeviceReading } from './batch.js';
import { CommandDesk } from './commands.js';
import { judgeEnd, newConnection, type Connection } from './connection.js';
import { EarlierBoots } from './earlier-boots.js';
import { DeviceError } from './errors.js';
import type { DeviceClientEvents, DeviceClientStats } from './events.js';
import { mqttTransport } from './mqtt-transport.js';
import { resolveOptions, type DeviceClientOptions, type ResolvedOptions } from './options.js';
import { Outbox, nextSeq } from './outbox.js';
import type { TransportCloseInfo, TransportFactory } from './transport.js';
import { wsTransport } from './ws-transport.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The transport the options name: a factory as given, else WebSocket or MQTT (the token stays in the factory). */
function pickTransport(o: ResolvedOptions, token: string): TransportFactory {
  if (typeof o.transport === 'function') return o.transport;
  const target = { url: o.url, deviceId: o.deviceId, token, ca: o.ca };
  return o.transport === 'mqtt' ? mqttTransport({ ...target, ...o.mqtt, ca: o.mqtt.ca ?? o.ca, connectTimeoutMs: o.connectTimeoutMs }) : wsTransport(target);
}

const NORMAL_CLOSURE = 1000;
const ABNORMAL_CLOSURE = 1006;

/**
 * A device's connection to the gateway: batches readings into telemetry frames, keeps every frame
 * until the gateway acks it (cumulative or range acks), resends after reconnects, reconnects with
 * backoff, and answers commands (onCommand).
 */
export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  readonly deviceId: string;
  readonly epoch: number;
  readonly #o: ResolvedOptions;
  readonly #connectTransport: TransportFactory;
  readonly #outbox: Outbox;
  /** Frames of earlier boots (keptFrames), freed by acks of their own epoch. */
  readonly #earlier: EarlierBoots;
  readonly #batch = new Batch();
  readonly #backoff: Backoff;
  readonly #commands: CommandDesk;
  #seq: number;
  #conn: Connection | undefined;
  #everOpened = false;
  #stopped = true;
  #connecting: Deferred | undefined;
  #retryTimer: unknown;
  #flushTimer: unknown;
  #flushGeneration = 0;
  #flushScheduled = false;
  #closing: Promise<void> | undefined;
  #closed = false;
  #onSettled: (() => void) | undefined;
  #counts = { sent: 0, acked: 0, resent: 0, dropped: 0, rejected: 0, reconnects: 0 };

  /** Checks the options (errors name the option); does not connect yet. */
  constructor(options: DeviceClientOptions) {
    super();
    const o = resolveOptions(options);
    this.#o = o;
    this.deviceId = o.deviceId;
    this.epoch = o.epoch;
    this.#seq = o.initialSeq;
    this.#connectTransport = pickTransport(o, options.token);
    this.#outbox = new Outbox(o.maxUnackedFrames);
    this.#earlier = new EarlierBoots(options.keptFrames ?? [], o.epoch);
    this.#backoff = new Backoff({ initialMs: o.backoffInitialMs, maxMs: o.backoffMaxMs, random: o.random });
    this.#commands = new CommandDesk(
      (id, status, payload) => this.#writeResult(id, status, payload),
      () => this.listenerCount('command') > 0,
    );
  }

  /** A snapshot of the counters. */
  get stats(): DeviceClientStats {
    return { ...this.#counts, unacked: this.#outbox.pending + this.#earlier.pending, pendingReadings: this.#batch.size };
  }

  /**
   * Copies of every telemetry frame no ack has covered yet, earlier boots' first, each boot's oldest
   * first: what a device writes to flash before it powers down, and hands back as `keptFrames` after
   * the reboot. Readings not sealed into a frame yet are not included.
   */
  unackedFrames(): Uint8Array[] {
    return [...this.#earlier.frames(), ...this.#outbox.frames()];
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.#conn?.opened === true;
  }

  /** Connects; resolves on the first open connection (retrying with backoff meanwhile), rejects with UNAUTHORIZED on HTTP 401 (MQTT: a refused CONNACK or SUBACK). */
  connect(): Promise<void> {
    if (this.#closing) return Promise.reject(new DeviceError('CLOSED', 'connect() after close()'));
    if (this.#conn?.opened) return Promise.resolve();
    this.#connecting ??= deferred();
    const { promise } = this.#connecting;
    if (this.#stopped) {
      this.#stopped = false;
      this.#backoff.reset();
      this.#attempt();
    }
    return promise;
  }

  /**
   * Queues one reading or several, taken at `time` (ms since 1970, default now). Throws a TypeError
   * or RangeError for a bad reading, DeviceError BUFFER_FULL (whenFull 'reject') or CLOSED.
   */
  send(readings: DeviceReading | readonly DeviceReading[], time: number = Date.now()): void {
    if (this.#closing) throw new DeviceError('CLOSED', 'send() after close()');
    checkTime(time);
    const many = Array.isArray(readings);
    const list = readings as readonly DeviceReading[];
    if (many) for (const r of list) checkReading(r);
    else checkReading(readings as DeviceReading);
    const n = many ? list.length : 1;
    if (n === 0) return;
    if (this.#o.whenFull === 'reject') this.#checkRoom(n, time);
    if (many) for (const r of list) this.#add(r, time);
    else this.#add(readings as DeviceReading, time);
    if (this.#batch.size > 0) this.#scheduleFlush();
  }

  /** Throws BUFFER_FULL unless the outbox has room for every frame `n` readings at `time` will make. */
  #checkRoom(n: number, time: number): void {
    const batch = this.#batch;
    // Readings per frame at worst (f64 with an offset, 14 bytes each) under the byte limit.
    const max = Math.min(this.#o.maxReadingsPerFrame, Math.floor((this.#o.maxFrameBytes - 22) / 14));
    // The open batch's frame counts as one: it will need a slot too.
    const frames = batch.fits(time) ? Math.ceil((batch.size + n) / max) : (batch.size > 0 ? 1 : 0) + Math.ceil(n / max);
    if (this.#outbox.size + frames > this.#o.maxUnackedFrames) {
      throw new DeviceError('BUFFER_FULL', `${this.#outbox.size} frames wait for an ack (maxUnackedFrames ${this.#o.maxUnackedFrames})`);
    }
  }

  #add(r: DeviceReading, time: number): void {
    const b = this.#batch;
    // Never a frame over the gateway's size limit: it would be refused every time it is resent.
    if (!b.fits(time) || (b.size > 0 && b.bytes + b.sizeOf(r, time) > this.#o.maxFrameBytes)) this.#seal();
    this.#batch.add(r, time);
    if (this.#batch.size >= this.#o.maxReadingsPerFrame) this.#seal();
  }

  /** Runs `handler` for every command named `name` (received → ok with its JSON return value, failed with a thrown error's message; once per command id). */
  onCommand(name: string, handler: (args: unknown, command: CommandFrame) => unknown): this {
    this.#commands.register(name, handler);
    return this;
  }

  /**
   * Answers a command with a CommandResult frame, for commands no onCommand handler answers. Results
   * are not kept in the outbox: returns false when no connection is open. The first result for one of
   * the last 256 commands is remembered: it answers a redelivery of the command, and if it could not
   * be written it goes out after the next connect. The frame carries the seq the next telemetry frame
   * will get, without taking it; the gateway dedupes only telemetry by seq.
   */
  sendResult(commandId: string, status: CommandStatus, payload = ''): boolean {
    if (status !== 0 && status !== 1 && status !== 2) throw new RangeError(`status must be CommandStatus Ok (0), Failed (1) or Rejected (2), got ${String(status)}`);
    encodeCommandResult({ timestamp: 0 }, { commandId, status, payload }); // throws for an id or payload the format cannot carry
    return this.#commands.answer(commandId, status, payload);
  }

  /** Writes one CommandResult frame if a connection is open. */
  #writeResult(commandId: string, status: CommandStatus, payload: string): boolean {
    const conn = this.#conn;
    if (!conn?.opened || conn.transport === undefined) return false;
    conn.transport.send(encodeCommandResult({ epoch: this.epoch, seq: this.#seq, timestamp: Date.now() }, { commandId, status, payload }));
    return true;
  }

  /** Seals the open batch, waits (at most closeTimeoutMs) for every frame to be acked, then closes with 1000. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const o = this.#o;
    this.#seal();
    this.#connecting?.reject(new DeviceError('CLOSED', 'close() was called before the connection opened'));
    this.#connecting = undefined;
    const empty = (): boolean => this.#outbox.size === 0 && this.#earlier.size === 0;
    if (!empty() && !this.#stopped) await this.#settle(o.closeTimeoutMs, () => empty() || this.#stopped);
    this.#stopped = true;
    this.#cancel(this.#retryTimer);
    const unacked = this.#outbox.pending + this.#earlier.pending;
    if (unacked > 0) this.#emitError(new DeviceError('CLOSE_TIMEOUT', `closing with ${unacked} frames the gateway has not acked (closeTimeoutMs ${o.closeTimeoutMs})`));
    const conn = this.#conn;
    if (conn?.transport !== undefined) {
      conn.closing = true;
      conn.transport.close(NORMAL_CLOSURE, 'client closed');
      await this.#settle(o.closeTimeoutMs, () => this.#conn !== conn);
      if (this.#conn === conn) {
        conn.transport.destroy();
        this.#ended(conn, { code: ABNORMAL_CLOSURE, reason: 'close handshake timed out', unauthorized: false });
      }
    }
    this.#closed = true;
  }

  /** Resolves when `done()` holds (checked whenever acks arrive or a connection ends) or after `ms`. */
  #settle(ms: number, done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        this.#o.timers.clearTimeout(timer);
        this.#onSettled = undefined;
        resolve();
      };
      const timer = this.#o.timers.setTimeout(finish, ms);
      this.#onSettled = () => {
        if (done()) finish();
      };
      this.#onSettled();
    });
  }

  #attempt(): void {
    const conn = newConnection();
    this.#conn = conn;
    conn.connectTimer = this.#o.timers.setTimeout(() => {
      if (this.#conn !== conn || conn.opened) return;
      conn.timedOut = true;
      conn.transport?.destroy();
      this.#ended(conn, { code: ABNORMAL_CLOSURE, reason: `not open after ${this.#o.connectTimeoutMs} ms`, unauthorized: false });
    }, this.#o.connectTimeoutMs);
    try {
      conn.transport = this.#connectTransport({
        open: () => this.#opened(conn),
        message: (frame) => this.#received(conn, frame),
        close: (info) => this.#ended(conn, info),
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      queueMicrotask(() => this.#ended(conn, { code: ABNORMAL_CLOSURE, reason: error.message, unauthorized: false, error }));
    }
  }

  #opened(conn: Connection): void {
    if (this.#conn !== conn || conn.opened) return;
    this.#cancel(conn.connectTimer);
    conn.opened = true;
    if (this.#everOpened) this.#counts.reconnects++;
    this.#everOpened = true;
    // Every unacked frame again, oldest first (earlier boots' before this one's), before anything new.
    const transport = conn.transport!;
    const unwritten = this.#outbox.unwritten;
    this.#counts.resent += this.#earlier.writeAll((frame) => transport.send(frame));
    this.#counts.resent += this.#outbox.writeAll((frame) => transport.send(frame));
    this.#counts.sent += unwritten;
    this.#commands.flush();
    const waiting = this.#connecting;
    this.#connecting = undefined;
    this.emit('connected');
    waiting?.resolve();
  }

  #received(conn: Connection, bytes: Uint8Array): void {
    if (this.#conn !== conn) return;
    const frame = decodeFrame(bytes);
    if (frame instanceof FrameError) {
      this.#emitError(new DeviceError(frame.code, `undecodable frame from the gateway: ${frame.message}`, { cause: frame }));
      return;
    }
    switch (frame.type) {
      case FrameType.Ack: {
        // An ack names the epoch whose frames it covers: this boot's, or an earlier one whose kept frames were resent.
        const own = frame.epoch === this.epoch;
        const box = own ? this.#outbox : this.#earlier.boot(frame.epoch);
        if (box === undefined) return; // an earlier boot of this device id whose frames are not kept here
        if (own && !conn.acked) {
          conn.acked = true;
          this.#backoff.reset();
        }
        const pending = box.pending;
        const first = (frame.flags & FrameFlag.AckRange) !== 0 ? frame.firstSeq : undefined;
        const released = first !== undefined ? box.releaseRange(first, frame.seq) : box.release(frame.seq);
        // Counted when an ack first covers a frame, whether or not it can leave the outbox yet.
        this.#counts.acked += pending - box.pending;
        if (released > 0) this.emit('acked', { seq: box.lastReleased!, frames: released, epoch: frame.epoch });
        if (!own) this.#earlier.prune(frame.epoch);
        this.#onSettled?.();
        return;
      }
      case FrameType.Command:
        if (!this.#commands.receive(frame)) return; // a repeat, answered from memory
        try {
          this.emit('command', frame);
        } finally {
          this.#commands.run(frame); // also when a listener threw: the command still gets its answer
        }
        return;
      case FrameType.Error: {
        const code = errorCodeName(frame.code) ?? (`ERROR_${frame.code}` as const);
        conn.gatewayError = new DeviceError(code, frame.message);
        this.#emitError(conn.gatewayError);
        // Refused for good, the frame is named: resending it cannot help (the close code says whether to reconnect).
        if (code === 'TIMESTAMP_OUT_OF_RANGE' || code === 'FRAME_TOO_LARGE') this.#rejected(frame.epoch, frame.seq);
        // Storage is full: keep every frame, and resend them after a reconnect with backoff, also where
        // the gateway cannot end the connection itself (behind an external MQTT broker).
        if (code === 'STORAGE_FULL') conn.transport?.close(CLOSE_CODES.STORAGE_FULL, code);
        return;
      }
      default:
        this.#emitError(new DeviceError('FRAME_WRONG_DIRECTION', `the gateway sent a frame of type 0x${frame.type.toString(16)}, which only devices send`));
    }
  }

  /** The gateway refused this frame for good (its readings' time cannot be stored): resending cannot help. */
  #rejected(epoch: number, seq: number): void {
    const box = epoch === this.epoch ? this.#outbox : this.#earlier.boot(epoch);
    if (box === undefined || !box.dropSeq(seq)) return;
    if (epoch !== this.epoch) this.#earlier.prune(epoch);
    this.#counts.rejected++;
    this.emit('rejected', { seq, frames: 1 });
    this.#onSettled?.();
  }

  #ended(conn: Connection, info: TransportCloseInfo): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    this.#cancel(conn.connectTimer);
    const code = info.status ?? info.code;
    const { error, final } = judgeEnd(conn, info, this.#o.connectTimeoutMs, this.deviceId);
    const retry = this.#o.reconnect && !final && !this.#closed;
    if (retry) {
      const delay = this.#backoff.next();
      this.#retryTimer = this.#o.timers.setTimeout(() => {
        this.#retryTimer = undefined;
        if (!this.#stopped && this.#conn === undefined) this.#attempt();
      }, delay);
    } else {
      this.#stopped = true;
      const waiting = this.#connecting;
      this.#connecting = undefined;
      if (waiting) waiting.reject(error ?? new DeviceError('CLOSED', `connection closed (${code}) before it opened`));
    }
    if (error) this.#emitError(error);
    this.emit('disconnected', { code, reason: info.reason, willReconnect: retry });
    this.#onSettled?.();
  }

  /** Turns the open batch into the next telemetry frame: encoded once, kept until acked. */
  #seal(): void {
    this.#flushGeneration++;
    if (this.#flushScheduled) {
      this.#flushScheduled = false;
      this.#cancel(this.#flushTimer);
    }
    if (this.#batch.size === 0) return;
    const timestamp = this.#batch.timestamp;
    const seq = this.#seq;
    this.#seq = nextSeq(seq);
    const frame = encodeTelemetry({ epoch: this.epoch, seq, timestamp }, this.#batch.take());
    let dropped = 0;
    if (this.#outbox.full) dropped = this.#outbox.dropOldest(1);
    const conn = this.#conn;
    const write = conn?.opened === true && conn.transport !== undefined;
    this.#outbox.push(seq, frame, write);
    if (write) {
      conn.transport!.send(frame);
      this.#counts.sent++;
    }
    if (dropped > 0) {
      this.#counts.dropped += dropped;
      this.emit('dropped', { frames: dropped });
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const generation = this.#flushGeneration;
    const flush = (): void => {
      this.#flushTimer = undefined;
      if (generation === this.#flushGeneration) this.#seal();
    };
    if (this.#o.batchMs === 0) queueMicrotask(flush);
    else this.#flushTimer = this.#o.timers.setTimeout(flush, this.#o.batchMs);
  }

  #cancel(timer: unknown): void {
    if (timer !== undefined) this.#o.timers.clearTimeout(timer);
  }

  /** 'error' without a listener must not crash the device's process. */
  #emitError(err: DeviceError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
