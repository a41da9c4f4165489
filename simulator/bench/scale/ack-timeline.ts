/**
 * Frames acked per gateway flush time, kept so the orchestrator can count, after the fact, the
 * frames acked between two instants it chose (the ends of its CPU window): every clock here is
 * this machine's, and once the acks of a window have all arrived (they may be late on a loaded
 * machine), the count is exact, and the frames and the CPU time cover the same span.
 */
import { AckLedger } from '../load/acks.js';

/** (gateway flush time in ms, frames newly acked at it), in arrival order. */
export type AckTimeline = [number, number][];

export class TimelineLedger extends AckLedger {
  private readonly byFlush = new Map<number, number>();

  override onMessage(payload: Buffer, lastAcked: number): number | undefined {
    const before = this.total;
    const seq = super.onMessage(payload, lastAcked);
    // Acks carry the flush time at bytes 12–19 (../load/acks.ts).
    if (seq !== undefined && this.total > before) {
      const t = payload.readDoubleLE(12);
      this.byFlush.set(t, (this.byFlush.get(t) ?? 0) + this.total - before);
    }
    return seq;
  }

  timeline(): AckTimeline {
    return [...this.byFlush];
  }
}

/** Frames acked by flushes in (from, to]. */
export function ackedBetween(timeline: AckTimeline, from: number, to: number): number {
  let n = 0;
  for (const [t, frames] of timeline) if (t > from && t <= to) n += frames;
  return n;
}

/** Frames/s in each window between consecutive instants (ms). */
export function ackRates(timeline: AckTimeline, instants: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < instants.length; i++) {
    const dt = (instants[i]! - instants[i - 1]!) / 1000;
    out.push(dt > 0 ? ackedBetween(timeline, instants[i - 1]!, instants[i]!) / dt : NaN);
  }
  return out;
}
