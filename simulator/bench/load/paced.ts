/**
 * A fixed total rate spread evenly over the devices (round robin, one frame per write, as a real
 * device sends), paced every millisecond from the elapsed time so timer jitter does not change the
 * rate. Each frame carries a probe id in channel 1 and the wall-clock ms as its timestamp. The
 * transport (a WebSocket message or an MQTT PUBLISH) is the target's: see PacedTarget.
 */
import { FRAME_BYTES, probeValue, SEQ_OFFSET, STAMP_OFFSET, TIMESTAMP_OFFSET, WS_FRAME_HEADER } from '../frames.js';
import type { LatencyRecorder } from './latency.js';
import type { WsDevice } from './devices.js';

/** One device as the paced sender sees it: writes one frame with this timestamp and probe value. */
export interface PacedTarget {
  send(wall: number, probe: number): void;
}

/** A WebSocket device: one zero-masked binary message per write. */
export function wsPacedTarget(d: WsDevice): PacedTarget {
  const hl = WS_FRAME_HEADER.length;
  return {
    send(wall, probe) {
      const out = Buffer.allocUnsafe(hl + FRAME_BYTES);
      WS_FRAME_HEADER.copy(out, 0);
      d.template.copy(out, hl);
      out.writeUInt32LE(d.seq, hl + SEQ_OFFSET);
      d.seq = (d.seq + 1) >>> 0;
      out.writeDoubleLE(wall, hl + TIMESTAMP_OFFSET);
      out.writeFloatLE(probe, hl + STAMP_OFFSET);
      d.socket.write(out);
    },
  };
}

export class PacedSender {
  sent = 0;
  /** Ticks that were due more than `maxBurst` frames (the sender fell behind). */
  lagTicks = 0;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private probe = 0;
  private t0 = 0;

  constructor(
    private readonly targets: readonly PacedTarget[],
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
    for (let k = 0; k < n; k++) {
      const t = this.targets[this.next]!;
      this.next = (this.next + 1) % this.targets.length;
      const id = this.probe++;
      this.latency.sent(id, performance.now());
      t.send(wall, probeValue(id));
    }
    this.sent += n;
  }
}
