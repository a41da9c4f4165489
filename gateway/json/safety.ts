/**
 * When a JSON message may be answered (HTTP 202, the MQTT PUBACK): once its readings are as safe as
 * a binary frame's ack makes them. With a seq: the device's position in the cursor file covers it
 * (storage settled it and the dedupe cursor reached the file, acks.ts). Without: storage settled
 * its write (nothing to dedupe, so no cursor). Checked after every ack flush; a wait that is not
 * safe within its timeout, or still waiting at shutdown, resolves false.
 */
import { DUPLICATE } from '../ingest.js';
import type { DeviceState } from '../devices.js';
import type { Storage } from '../storage/storage.js';

/** One message taken: what must be safe before it is answered. */
export interface SafeMark {
  device: DeviceState;
  sequenced: boolean;
  epoch: number;
  seq: number;
  /** Its storage ticket, or DUPLICATE when it was one (then whatever was taken before must be settled). */
  ticket: number;
}

export interface AckPositions {
  covers(device: DeviceState, epoch: number, seq: number): boolean;
  onFlushed(listener: (now: number) => void): void;
  readonly newestTicket: number;
}

interface Wait {
  marks: SafeMark[];
  /** Marks before this one are safe. */
  next: number;
  deadline: number;
  resolve(ok: boolean): void;
}

/** Most requests or MQTT batches waiting at once; more are answered ACK_TIMEOUT at once (bounded memory). */
export const MAX_WAITS = 20_000;

export class SafeWaits {
  private waits: Wait[] = [];
  private closed = false;
  /** Waits that ended unsafe (timeout, shutdown, over MAX_WAITS). */
  timedOut = 0;

  constructor(
    private readonly acks: AckPositions,
    private readonly storage: Pick<Storage, 'durableTicket'>,
    private readonly timeoutMs: number,
  ) {
    acks.onFlushed((now) => this.check(now));
  }

  get pending(): number {
    return this.waits.length;
  }

  /** Resolves true once every mark is safe, false when that takes over the timeout. Call right after taking them. */
  wait(marks: SafeMark[], now: number): Promise<boolean> {
    for (const m of marks) if (m.ticket === DUPLICATE) m.ticket = this.acks.newestTicket;
    const w: Wait = { marks, next: 0, deadline: now + this.timeoutMs, resolve: () => {} };
    if (this.advance(w)) return Promise.resolve(true);
    if (this.closed || this.waits.length >= MAX_WAITS) {
      this.timedOut++;
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      w.resolve = resolve;
      this.waits.push(w);
    });
  }

  /** Answers every wait: the gateway stops, nothing more becomes safe. */
  close(): void {
    this.closed = true;
    for (const w of this.waits) w.resolve(false);
    this.timedOut += this.waits.length;
    this.waits = [];
  }

  private check(now: number): void {
    const ws = this.waits;
    let kept = 0;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (this.advance(w)) w.resolve(true);
      else if (now >= w.deadline) {
        this.timedOut++;
        w.resolve(false);
      } else ws[kept++] = w;
    }
    ws.length = kept;
  }

  private advance(w: Wait): boolean {
    while (w.next < w.marks.length && this.safe(w.marks[w.next]!)) w.next++;
    return w.next === w.marks.length;
  }

  private safe(m: SafeMark): boolean {
    if (!m.sequenced) return this.storage.durableTicket >= m.ticket;
    const cur = m.device.seq.current;
    // A frame of an earlier boot: acked (as binary ones are) once settled; the cursor file keeps the newest boot only.
    if (cur !== undefined && cur.epoch !== m.epoch) return this.storage.durableTicket >= m.ticket;
    return this.acks.covers(m.device, m.epoch, m.seq);
  }
}
