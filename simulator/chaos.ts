/**
 * The wire of one DeviceClient incarnation: a TransportFactory wrapped around the SDK's real one
 * (wsTransport / mqttTransport). It sees every frame the client writes, which lets it
 * - note when each telemetry seq was first written, for ack latency;
 * - write a frame twice (--duplicate) or hold one back until the next is written (--reorder), so
 *   the gateway meets real duplicates and out-of-order seqs; the SDK's outbox never knows. Frames
 *   are held only once the gateway has acked something of this boot: a gateway starts a new
 *   epoch's window at the first seq it sees, so a reordered first frame would be taken for a
 *   replay and acked without being stored (a gateway limit, not something a device can fix);
 * - drop the connection on demand (--churn, --outage) exactly as a cut cable would (no close
 *   frame), and during an outage hold new connection attempts until the window ends.
 */
import { FrameType } from '../devices/codec/types.js';
import type { Transport, TransportCloseInfo, TransportFactory, TransportHandlers } from '../devices/sdk/index.js';
import type { FleetCounters } from './counters.js';
import { record } from './latency.js';

/** What the wires of one fleet share. */
export interface WireContext {
  counters: FleetCounters;
  /** Chance per telemetry frame (0 = off). */
  duplicate: number;
  reorder: number;
  random: () => number;
  /** Until when (ms since 1970) new connections wait: the outage window's end, or 0. */
  outageUntil: number;
}

/** First-write times are kept for this many recent seqs per device (a power of two). */
const RING = 64;
const MASK = RING - 1;
/** Spreads reconnects after an outage over this many ms, so they do not arrive as one burst. */
const OUTAGE_JITTER_MS = 1000;
const ABNORMAL_CLOSURE = 1006;

function seqOf(frame: Uint8Array): number {
  return (frame[8]! | (frame[9]! << 8) | (frame[10]! << 16) | (frame[11]! << 24)) >>> 0;
}

export class Wire {
  readonly factory: TransportFactory;
  readonly #ctx: WireContext;
  readonly #sentAt = new Float64Array(RING);
  readonly #sentSeq = new Uint32Array(RING);
  #current: Transport | undefined;
  /** A held (reordered) frame is written at the latest after this many ms. */
  holdMs: number;
  /**
   * The gateway acked a frame of this boot. Until then frames are never held back: a gateway learns
   * where a boot's seqs begin from the first frame it sees, so a boot's first frame arriving after
   * its second would be taken for a replay (see the simulator's notes on --reorder).
   */
  ackedOnce = false;

  constructor(inner: TransportFactory, ctx: WireContext, holdMs: number) {
    this.#ctx = ctx;
    this.holdMs = holdMs;
    this.factory = (handlers) => {
      const now = Date.now();
      const wait = ctx.outageUntil - now;
      const t =
        wait > 0
          ? new DelayedTransport(() => new ChaosTransport(inner, handlers, this), wait + ctx.random() * OUTAGE_JITTER_MS, handlers)
          : new ChaosTransport(inner, handlers, this);
      this.#current = t;
      return t;
    };
  }

  get context(): WireContext {
    return this.#ctx;
  }

  /** Drops the current connection at once (no close handshake): the client sees 1006 and reconnects. */
  drop(): boolean {
    const t = this.#current;
    if (t === undefined) return false;
    this.#current = undefined;
    t.destroy();
    return true;
  }

  /** Called for every telemetry frame on its first write. */
  wrote(seq: number, now: number): void {
    const i = seq & MASK;
    if (this.#sentSeq[i] === seq && this.#sentAt[i]! > 0) return; // a resend
    this.#sentSeq[i] = seq;
    this.#sentAt[i] = now;
  }

  /** An ack released `frames` frames ending at `seq`: one latency sample per frame still remembered. */
  acked(seq: number, frames: number, now: number): void {
    this.ackedOnce = true;
    const h = this.#ctx.counters.latency;
    const n = Math.min(frames, RING);
    for (let k = 0; k < n; k++) {
      const s = (seq - k) >>> 0;
      const i = s & MASK;
      if (this.#sentSeq[i] === s && this.#sentAt[i]! > 0) {
        record(h, now - this.#sentAt[i]!);
        this.#sentAt[i] = 0;
      }
    }
  }
}

/** The real transport, with duplicate / reorder on the way out. */
class ChaosTransport implements Transport {
  readonly #inner: Transport;
  readonly #wire: Wire;
  #held: Uint8Array | undefined;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(inner: TransportFactory, handlers: TransportHandlers, wire: Wire) {
    this.#wire = wire;
    this.#inner = inner({
      open: () => handlers.open(),
      message: (frame) => handlers.message(frame),
      close: (info) => {
        this.#discard();
        handlers.close(info);
      },
    });
  }

  send(frame: Uint8Array): void {
    if (frame[1] !== FrameType.Telemetry) return this.#inner.send(frame);
    const wire = this.#wire;
    const ctx = wire.context;
    wire.wrote(seqOf(frame), Date.now());
    const held = this.#held;
    if (held !== undefined) {
      this.#discard();
      this.#write(frame);
      this.#inner.send(held);
      ctx.counters.reordered++;
      return;
    }
    if (ctx.reorder > 0 && wire.ackedOnce && ctx.random() < ctx.reorder) {
      this.#held = frame;
      this.#holdTimer = setTimeout(() => this.#flushHeld(), wire.holdMs);
      return;
    }
    this.#write(frame);
  }

  #write(frame: Uint8Array): void {
    const ctx = this.#wire.context;
    this.#inner.send(frame);
    if (ctx.duplicate > 0 && ctx.random() < ctx.duplicate) {
      this.#inner.send(frame);
      ctx.counters.duplicated++;
    }
  }

  /** Nothing came after the held frame in time: write it as it is (the outbox would resend it anyway). */
  #flushHeld(): void {
    const held = this.#held;
    this.#holdTimer = undefined;
    this.#held = undefined;
    if (held !== undefined) this.#inner.send(held);
  }

  #discard(): void {
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#held = undefined;
  }

  close(code: number, reason: string): void {
    this.#flushHeld();
    this.#inner.close(code, reason);
  }

  destroy(): void {
    this.#discard();
    this.#inner.destroy();
  }
}

/** During an outage: a connection attempt that starts only when the window ends. */
class DelayedTransport implements Transport {
  #inner: Transport | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #handlers: TransportHandlers;

  constructor(start: () => Transport, delayMs: number, handlers: TransportHandlers) {
    this.#handlers = handlers;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inner = start();
    }, delayMs);
  }

  send(frame: Uint8Array): void {
    this.#inner?.send(frame);
  }

  close(code: number, reason: string): void {
    if (this.#inner !== undefined) return this.#inner.close(code, reason);
    this.#abandon({ code, reason, unauthorized: false });
  }

  destroy(): void {
    if (this.#inner !== undefined) return this.#inner.destroy();
    this.#abandon({ code: ABNORMAL_CLOSURE, reason: 'dropped during the outage', unauthorized: false });
  }

  #abandon(info: TransportCloseInfo): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    queueMicrotask(() => this.#handlers.close(info));
  }
}
