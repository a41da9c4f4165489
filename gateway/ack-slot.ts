/**
 * One device's ack state and its bookkeeping (what is owed once storage settles), kept on
 * DeviceState so the hot path needs no lookup. The ledger (acks.ts) decides when acks go out and
 * sends them; this file holds what one device is owed. Its own file so that devices.ts can hold it
 * without importing the ledger, which imports devices.ts.
 */

/** True when u32 seq `a` is after `b` (wrap-aware). */
export const after = (a: number, b: number): boolean => a !== b && ((a - b) >>> 0) < 0x80000000;

/** Records an old epoch's ack position in `old` (flat [epoch, contig]): one entry per epoch, a few epochs at most. */
function noteOld(old: number[], epoch: number, contig: number): void {
  for (let i = 0; i < old.length; i += 2) {
    if (old[i] === epoch) {
      if (after(contig, old[i + 1]!)) old[i + 1] = contig;
      return;
    }
  }
  // A device that reboots over and over within one interval: its oldest boots wait for a resend.
  if (old.length >= 8) old.splice(0, 2);
  old.push(epoch, contig);
}

/** Only the ack ledger (acks.ts) reads or writes these fields. */
export class AckSlot {
  /** In the ledger's queue: a flush has something to do for this device. */
  queued = false;
  /** An ack should go out at the next flush: the durable position moved, or a replay needs re-acking. */
  owed = false;
  /** The durable position moved and its cursor line has not reached the file yet. */
  unwritten = false;
  /** Its ack is stretched: out of the ledger's queue, in the bucket of the flush that releases it. */
  held = false;
  /** A replay is owed its ack: it goes out at the next flush, never stretched (the device is resending). */
  replayed = false;
  /** Frames ingested since the last ack went out, and the ledger's flush time when the first of them came. */
  unacked = 0;
  unackedSince = 0;
  /** Where the device's frames are safe in storage: what acks report and the cursor file records. */
  epoch = -1;
  contig = 0;
  /**
   * Ingested frames whose storage write is not settled yet, as flat [tick, ticket, epoch, contig]
   * (cumulative acks) or [tick, ticket, epoch, first, last] (range acks).
   */
  unsettled: number[] | undefined;
  /** Bridge mode: settled runs of seqs to range-ack, flat [epoch, first, last, ...]. */
  ranges: number[] | undefined;
  /** Settled positions of earlier boots (frames kept across a reboot), flat [epoch, contig]: acked by their own epoch. */
  old: number[] | undefined;

  /** The acked seq when the device is in `epoch` now, else null (what the API shows as ackedSeq). */
  ackedIn(epoch: number | undefined): number | null {
    return this.epoch >= 0 && this.epoch === epoch ? this.contig : null;
  }

  /**
   * A frame handed to storage under `ticket`, its epoch's contiguous point `contig`. Frames of one
   * flush interval (`tick`) collapse into one entry; a later interval starts a new one, so an
   * entry's ticket stops growing and settles while new frames keep coming.
   */
  noteCumulative(tick: number, ticket: number, epoch: number, contig: number): void {
    const u = (this.unsettled ??= []);
    const n = u.length;
    if (n > 0 && u[n - 4] === tick && u[n - 2] === epoch) {
      u[n - 3] = ticket;
      u[n - 1] = contig;
    } else u.push(tick, ticket, epoch, contig);
  }

  /** Bridge mode: a seq to range-ack once `ticket` is settled (runs of seqs of one epoch within an interval collapse). */
  noteRange(tick: number, ticket: number, epoch: number, seq: number): void {
    const u = (this.unsettled ??= []);
    const n = u.length;
    if (n > 0 && u[n - 5] === tick && u[n - 3] === epoch && ((u[n - 1]! + 1) >>> 0) === seq) {
      u[n - 4] = ticket;
      u[n - 1] = seq;
    } else u.push(tick, ticket, epoch, seq, seq);
  }

  /**
   * Moves what storage has settled (tickets ≤ durable) into the durable position (or the ranges to
   * ack). An entry of an epoch that is no longer the device's newest (`current`) becomes an ack of
   * its own epoch instead: a reboot within one interval must not hide the old boot's frames.
   * Returns true when the durable position advanced.
   */
  settle(durable: number, ranges: boolean, current: number | undefined): boolean {
    const u = this.unsettled;
    if (u === undefined) return false;
    const width = ranges ? 5 : 4;
    let i = 0;
    let advanced = false;
    while (i < u.length && u[i + 1]! <= durable) {
      if (ranges) (this.ranges ??= []).push(u[i + 2]!, u[i + 3]!, u[i + 4]!);
      else if (u[i + 2] === current) {
        // A re-ack still owed for the boot this one replaces goes out by its own epoch.
        if (this.owed && this.epoch >= 0 && this.epoch !== current) noteOld((this.old ??= []), this.epoch, this.contig);
        this.epoch = u[i + 2]!;
        this.contig = u[i + 3]!;
        advanced = true;
      } else noteOld((this.old ??= []), u[i + 2]!, u[i + 3]!);
      i += width;
    }
    if (i > 0) u.splice(0, i);
    return advanced;
  }

  /**
   * Bridge mode: range acks say nothing a restart could use, so once everything this gateway took of
   * a device is settled, its dedupe position (`window`: every seq up to it taken here, or by the share
   * group's other gateways) is what the cursor file keeps: resends of frames acked before a restart
   * are duplicates after it. Returns true when the position moved.
   */
  settleWindow(window: { epoch: number; contig: number } | undefined): boolean {
    if (window === undefined || (this.unsettled?.length ?? 0) > 0 || (this.epoch === window.epoch && this.contig === window.contig)) return false;
    this.epoch = window.epoch;
    this.contig = window.contig;
    return true;
  }
}
