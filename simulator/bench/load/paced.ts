/**
 * A fixed total rate spread evenly over the devices (round robin, one frame per write, as a real
 * device sends), paced every millisecond from the elapsed time so timer jitter does not change the
 * rate. Each frame carries a probe id in channel 1 and the wall-clock ms as its timestamp.
 */
import { FRAME_BYTES, probeValue, SEQ_OFFSET, STAMP_OFFSET, TIMESTAMP_OFFSET, WS_FRAME_HEADER } from '../frames.js';
import type { LatencyRecorder } from './latency.js';
import type { WsDevice } from './devices.js';

export class PacedSender {
  sent = 0;
  /** Ticks that were due more than `maxBurst` frames (the sender fell behind). */
  lagTicks = 0;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private probe = 0;
  private t0 = 0;

  constructor(
    private readonly devices: readonly WsDevice[],
    private readonly ratePerSec: number,
    private readonly latency: LatencyRecorder,
    private readonly maxBurst = 2000,
  ) {}

  start(): void {
    this.t0 = performance.now();
    this.timer = setInterval(() => this.tick(), 1);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.t0) * this.ratePerSec) / 1000) - this.sent;
    let n = due;
    if (n > this.maxBurst) {
      n = this.maxBurst;
      this.lagTicks++;
    }
    const wall = Date.now();
    const hl = WS_FRAME_HEADER.length;
    for (let k = 0; k < n; k++) {
      const d = this.devices[this.next]!;
      this.next = (this.next + 1) % this.devices.length;
      const out = Buffer.allocUnsafe(hl + FRAME_BYTES);
      WS_FRAME_HEADER.copy(out, 0);
      d.template.copy(out, hl);
      out.writeUInt32LE(d.seq, hl + SEQ_OFFSET);
      d.seq = (d.seq + 1) >>> 0;
      out.writeDoubleLE(wall, hl + TIMESTAMP_OFFSET);
      const id = this.probe++;
      out.writeFloatLE(probeValue(id), hl + STAMP_OFFSET);
      this.latency.sent(id, performance.now());
      d.socket.write(out);
    }
    this.sent += n;
  }
}
