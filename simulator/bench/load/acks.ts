/**
 * The gateway's own count of what it ingested, as its devices see it: every cumulative ack carries
 * the highest contiguous seq stored and the gateway's clock at the ack flush (all acks of one flush
 * share it). Summing each device's newly acked frames per flush time gives "frames ingested by T"
 * with the gateway's timestamp, however late the acks arrive: under a flood the gateway's event
 * loop takes long turns, and a /metrics request is answered seconds late.
 */
import { FrameType } from '../../../devices/codec/index.js';

export class AckLedger {
  /** Newly acked frames per gateway flush time (ms). */
  private readonly byTime = new Map<number, number>();
  acks = 0;
  /** All frames acked so far. */
  total = 0;
  /** Called after each ack. */
  onAck: (() => void) | undefined;

  /** Reads an ack frame; returns the seq it acks (or undefined for any other message). */
  onMessage(payload: Buffer, lastAcked: number): number | undefined {
    if (payload.length < 20 || payload[1] !== FrameType.Ack) return undefined;
    const seq = payload.readUInt32LE(8);
    const t = payload.readDoubleLE(12);
    const fresh = (seq - lastAcked) >>> 0;
    if (fresh > 0x7fffffff) return undefined; // older than what we have (cannot happen on one connection)
    this.byTime.set(t, (this.byTime.get(t) ?? 0) + fresh);
    this.acks++;
    this.total += fresh;
    this.onAck?.();
    return seq;
  }

  /**
   * Frames acked by the latest flush at or before `before` (gateway clock = this machine's clock),
   * leaving out recent flushes whose acks may still be on their way to other sockets.
   */
  countAt(before: number): { t: number; frames: number } {
    let t = 0;
    let frames = 0;
    for (const [time, n] of this.byTime) {
      if (time > before) continue;
      frames += n;
      if (time > t) t = time;
    }
    return { t, frames };
  }
}
