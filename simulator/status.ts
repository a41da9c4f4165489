/**
 * The live status line: redrawn in place on a terminal (carriage return + clear line), a plain
 * line every few seconds otherwise (logs, CI). Written to stderr, so stdout carries only the
 * summary (and with --json only the JSON object).
 */
import type { StatusSnapshot } from './run.js';

const n = (x: number): string => Math.round(x).toLocaleString('en-US');
const ms = (x: number | null): string => (x === null ? '–' : `${x} ms`);

export function formatStatus(s: StatusSnapshot): string {
  const c = s.counters;
  const parts = [
    `[${Math.floor(s.elapsedS)}s] ${n(c.connected)}/${n(c.devices)} connected`,
    `${n(s.framesPerSecond)} frames/s`,
    `sent ${n(c.sent)} acked ${n(c.acked)}`,
    `resent ${n(c.resent)}`,
    `reconnects ${n(c.reconnects)}`,
    `ack p50 ${ms(s.ackP50)} p99 ${ms(s.ackP99)}`,
  ];
  if (c.errors > 0) parts.push(`errors ${n(c.errors)}`);
  if (s.phase === 'draining') parts.push(`draining: ${n(c.unacked)} unacked`);
  return parts.join(' | ');
}

export interface StatusStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class StatusPrinter {
  readonly #out: StatusStream;
  readonly #everyMs: number;
  #lastPlain = -Infinity;
  #drawn = false;

  /** `everyS`: seconds between plain lines when `out` is not a terminal (0 = none). */
  constructor(out: StatusStream, everyS: number) {
    this.#out = out;
    this.#everyMs = everyS * 1000;
  }

  update(s: StatusSnapshot): void {
    const line = formatStatus(s);
    if (this.#out.isTTY) {
      const width = this.#out.columns ?? 0;
      this.#out.write(`\r\x1b[2K${width > 1 && line.length >= width ? line.slice(0, width - 1) : line}`);
      this.#drawn = true;
      return;
    }
    if (this.#everyMs === 0) return;
    const now = s.elapsedS * 1000;
    if (now - this.#lastPlain < this.#everyMs) return;
    this.#lastPlain = now;
    this.#out.write(`${line}\n`);
  }

  /** Ends the redrawn line so what follows starts on a fresh one. */
  end(): void {
    if (this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}
