import { decodeHeader } from '../codec/decode.js';
import { FrameType, type FrameHeader } from '../codec/types.js';
import { Outbox, seqAtOrBefore } from './outbox.js';

/**
 * Telemetry frames a device kept across a reboot (for example in flash) that no ack covered yet: one
 * outbox per earlier epoch. They are resent with their original epoch and seq before anything of
 * this boot, and only an ack of their own epoch frees them (PROTOCOL.md, Delivery 6).
 */
export class EarlierBoots {
  readonly #boots = new Map<number, Outbox>();

  /** Checks and groups `frames` (encoded telemetry frames, each epoch's in seq order); errors name the `keptFrames` option. */
  constructor(frames: readonly Uint8Array[], ownEpoch: number) {
    const h = {} as FrameHeader;
    const groups = new Map<number, { seq: number; frame: Uint8Array }[]>();
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      if (!(f instanceof Uint8Array)) throw new TypeError(`The "keptFrames" option must hold Uint8Array frames, got ${typeof f} at index ${i}`);
      const err = decodeHeader(f, h);
      if (err !== undefined || h.type !== FrameType.Telemetry) throw new TypeError(`The "keptFrames" option must hold telemetry frames; index ${i} is not one (${err?.code ?? `type 0x${h.type.toString(16)}`})`);
      if (h.epoch === ownEpoch) throw new TypeError(`The "keptFrames" option holds frames of earlier boots; index ${i} has this client's epoch ${ownEpoch}`);
      const g = groups.get(h.epoch) ?? [];
      const prev = g[g.length - 1];
      if (prev !== undefined && seqAtOrBefore(h.seq, prev.seq)) throw new TypeError(`The "keptFrames" option must list each epoch's frames in seq order; index ${i} (seq ${h.seq}) is not after seq ${prev.seq}`);
      g.push({ seq: h.seq, frame: f.slice() });
      groups.set(h.epoch, g);
    }
    for (const [epoch, g] of groups) {
      const box = new Outbox(g.length);
      for (const { seq, frame } of g) box.push(seq, frame, false);
      this.#boots.set(epoch, box);
    }
  }

  /** Frames no ack has covered yet, over every earlier boot. */
  get pending(): number {
    let n = 0;
    for (const box of this.#boots.values()) n += box.pending;
    return n;
  }

  /** Frames kept (see Outbox.size). */
  get size(): number {
    let n = 0;
    for (const box of this.#boots.values()) n += box.size;
    return n;
  }

  /** The outbox of an earlier boot's epoch, or undefined when none of its frames is kept. */
  boot(epoch: number): Outbox | undefined {
    return this.#boots.get(epoch);
  }

  /** After an ack: forgets a boot whose frames are all gone. */
  prune(epoch: number): void {
    if (this.#boots.get(epoch)?.size === 0) this.#boots.delete(epoch);
  }

  /** Hands every unacked frame to `write`, boot by boot in the order given, oldest first. Returns how many. */
  writeAll(write: (frame: Uint8Array) => void): number {
    let n = 0;
    for (const box of this.#boots.values()) {
      const before = box.pending;
      box.writeAll(write);
      n += before;
    }
    return n;
  }

  /** Copies of the kept frames no ack covered, in resend order: what a device persists before it powers down. */
  frames(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const box of this.#boots.values()) out.push(...box.frames());
    return out;
  }
}
