/**
 * Writes as fast as a socket takes them: two pre-encoded blocks per socket, each refilled (fresh
 * seqs) and written again once the kernel has taken it (the write callback), so a block is never
 * patched while Node may still be reading it. At most `burst` refills per socket run back to back
 * before yielding to the event loop, so reads (acks, the dashboard) and IPC are not starved.
 */
import type { Socket } from 'node:net';
import type { FrameBlock } from '../frames.js';

export class BlockPump {
  /** Frames handed to the socket. */
  sent = 0;
  private readonly busy: boolean[];
  private running = false;
  private burst = 0;
  private yielded = false;

  constructor(
    private readonly socket: Socket,
    private readonly blocks: readonly FrameBlock[],
    /** Patches a block before it is written (new seqs, packet ids). */
    private readonly refill: (block: FrameBlock) => void,
    private readonly maxBurst = 8,
  ) {
    this.busy = blocks.map(() => false);
  }

  start(): void {
    this.running = true;
    this.kick();
  }

  stop(): void {
    this.running = false;
  }

  private kick(): void {
    for (let i = 0; i < this.blocks.length; i++) {
      if (!this.running || this.socket.destroyed) return;
      if (this.busy[i]) continue;
      const block = this.blocks[i]!;
      this.refill(block);
      this.busy[i] = true;
      this.sent += block.count;
      this.socket.write(block.buf, () => {
        this.busy[i] = false;
        this.next();
      });
    }
  }

  private next(): void {
    if (++this.burst < this.maxBurst) {
      this.kick();
      return;
    }
    if (this.yielded) return;
    this.yielded = true;
    setImmediate(() => {
      this.yielded = false;
      this.burst = 0;
      this.kick();
    });
  }
}
