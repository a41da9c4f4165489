/**
 * Counters published from the hot path of a bench server. Under a flood a Node or uWS event loop
 * can take seconds per turn (it reads every socket's backlog in turn), so neither an HTTP request
 * nor a timer is answered on time; the message handler itself runs all the time, though. Every few
 * calls it checks the clock and, at most every 2 ms, overwrites a small file with
 * `<ms since epoch> <frames> <readings>`: counts with the server's own timestamp. A 10 ms timer
 * publishes too, for when traffic stops.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export class HotCounter {
  frames = 0;
  readings = 0;
  private calls = 0;
  private lastWrite = 0;
  private readonly fd: number | undefined;

  constructor(
    path: string | undefined,
    /** Check the clock every this many calls (a power of two). */
    private readonly every = 256,
  ) {
    this.fd = path ? openSync(path, 'w') : undefined;
    this.publish(Date.now());
    // When traffic stops, the last counts must still get out (the generator waits for them); an idle
    // loop runs its timers on time.
    setInterval(() => {
      const now = Date.now();
      if (now - this.lastWrite >= 10) this.publish(now);
    }, 10).unref();
  }

  add(frames: number, readings: number): void {
    this.frames += frames;
    this.readings += readings;
    if ((++this.calls & (this.every - 1)) !== 0) return;
    const now = Date.now();
    if (now - this.lastWrite >= 2) this.publish(now);
  }

  publish(now: number): void {
    this.lastWrite = now;
    if (this.fd !== undefined) writeSync(this.fd, `${now} ${this.frames} ${this.readings}`.padEnd(64) + '\n', 0);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}

/** Reads what a HotCounter wrote. */
export function parseCounterFile(text: string): { t: number; frames: number; readings: number } {
  const [t, frames, readings] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(t) || !Number.isFinite(frames)) throw new Error(`counter file unreadable: "${text.slice(0, 80)}"`);
  return { t: t!, frames: frames!, readings: readings ?? 0 };
}
