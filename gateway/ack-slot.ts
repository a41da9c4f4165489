/**
 * One device's ack state, kept on DeviceState so the hot path needs no lookup. Its own file so that
 * devices.ts can hold it without importing the ledger (acks.ts), which imports devices.ts.
 */
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
}
