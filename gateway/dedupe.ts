/**
 * Sequence tracking for one device boot (epoch): which u32 seqs were ingested, the highest
 * contiguous one (what the cumulative ack reports), and how many seqs will never come (gaps).
 * Tolerates reordering within WINDOW frames; arithmetic is modulo 2^32 so seqs may wrap.
 */

/** Frames ahead of the contiguous point that are remembered individually. */
export const WINDOW = 256;
const MASK = WINDOW - 1;

export const enum Verdict {
  New = 0,
  Duplicate = 1,
}

export class SeqWindow {
  /** Highest seq such that it and everything before it (in this epoch) was ingested or given up. */
  contig: number;
  /** Seqs skipped for good: the device dropped them, or they fell out of the window. */
  gaps = 0;
  /** When this gateway sees only part of the seqs (MQTT shared subscription), skipped seqs are not gaps. */
  sparse = false;
  private readonly bits = new Uint32Array(WINDOW / 32);
  /** Seqs in the window before a new boot's first frame, still taken once (see acceptEarly). */
  private early: Uint32Array | undefined;
  private earlyBase = 0;

  constructor(
    readonly epoch: number,
    /** The first seq this window will see is contig + 1. */
    contig: number,
  ) {
    this.contig = contig >>> 0;
  }

  /** Lets seqs up to WINDOW before the start be taken once each: a new boot's frames arriving out of order. */
  acceptEarly(): void {
    this.early = new Uint32Array(WINDOW / 32);
    this.earlyBase = (this.contig + 1 - WINDOW) >>> 0;
  }

  /** Classifies `seq` and records it when new. `gapBefore`: the device says earlier unacked seqs are gone. */
  accept(seq: number, gapBefore: boolean): Verdict {
    let d = (seq - this.contig) >>> 0;
    if (d === 0 || d >= 0x80000000) return this.late(seq);
    let skipped = false;
    if (gapBefore && d > 1) {
      this.skip(d - 1);
      d = 1;
      skipped = true;
    } else if (d >= WINDOW) {
      this.skip(d - (WINDOW - 1));
      d = WINDOW - 1;
    }
    const pos = seq & MASK;
    const word = pos >>> 5;
    const bit = 1 << (pos & 31);
    if ((this.bits[word]! & bit) !== 0) {
      // A resend that now carries GapBefore: the seqs it gave up may have been the only thing holding
      // back the frames already taken after them, so the contiguous point moves now, not at the next frame.
      if (skipped) this.advance();
      return Verdict.Duplicate;
    }
    this.bits[word]! |= bit;
    this.advance();
    return Verdict.New;
  }

  private late(seq: number): Verdict {
    const e = (seq - this.earlyBase) >>> 0;
    if (this.early === undefined || e >= WINDOW) return Verdict.Duplicate;
    const bit = 1 << (e & 31);
    if ((this.early[e >>> 5]! & bit) !== 0) return Verdict.Duplicate;
    this.early[e >>> 5]! |= bit;
    return Verdict.New;
  }

  /** Moves contig forward by n, counting every seq passed that was never seen as a gap. */
  private skip(n: number): void {
    if (n >= WINDOW) {
      let seen = 0;
      for (let i = 0; i < this.bits.length; i++) {
        seen += popcount(this.bits[i]!);
        this.bits[i] = 0;
      }
      if (!this.sparse) this.gaps += n - seen;
      this.contig = (this.contig + n) >>> 0;
      return;
    }
    for (let i = 0; i < n; i++) {
      this.contig = (this.contig + 1) >>> 0;
      const pos = this.contig & MASK;
      const bit = 1 << (pos & 31);
      if ((this.bits[pos >>> 5]! & bit) === 0) {
        if (!this.sparse) this.gaps++;
      }
      else this.bits[pos >>> 5]! &= ~bit;
    }
  }

  private advance(): void {
    for (;;) {
      const pos = (this.contig + 1) & MASK;
      const bit = 1 << (pos & 31);
      if ((this.bits[pos >>> 5]! & bit) === 0) return;
      this.bits[pos >>> 5]! &= ~bit;
      this.contig = (this.contig + 1) >>> 0;
    }
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * Per-device dedupe across boots: the current epoch's window plus the previous one, so a late
 * frame from before a reboot is still recognised.
 */
export class DeviceSequence {
  current: SeqWindow | undefined;
  previous: SeqWindow | undefined;
  private retiredGaps = 0;
  /** See SeqWindow.sparse. */
  sparse = false;

  /** Gaps over every boot seen. */
  get gaps(): number {
    return this.retiredGaps + (this.current?.gaps ?? 0) + (this.previous?.gaps ?? 0);
  }

  /** Restores a persisted cursor (after a gateway restart). */
  restore(epoch: number, contig: number): void {
    this.current = new SeqWindow(epoch, contig);
    this.current.sparse = this.sparse;
  }

  accept(epoch: number, seq: number, gapBefore: boolean): Verdict {
    let w = this.current;
    if (w === undefined || w.epoch !== epoch) {
      if (this.previous !== undefined && this.previous.epoch === epoch) {
        return this.previous.accept(seq, gapBefore);
      }
      // A new boot: the first seq seen starts the window (devices may start at 0, 1 or a persisted
      // seq). Its frames may arrive out of order from the start, so seqs just before it are still
      // taken once if they come late, instead of being dropped as replays.
      this.retiredGaps += this.previous?.gaps ?? 0;
      this.previous = w;
      w = this.current = new SeqWindow(epoch, (seq - 1) >>> 0);
      w.acceptEarly();
      w.sparse = this.sparse;
    }
    return w.accept(seq, gapBefore);
  }
}
