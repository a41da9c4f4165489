/**
 * Refusals in the log without letting anyone fill the disk: the first refusal after a quiet
 * interval is logged at once (with its message, so a device maker sees why), the rest of the
 * interval become one line with counts by code and a few example ids and addresses. 20,000
 * bad-token attempts cost two lines, not 4 MB. Tokens are never passed in.
 */
import type { Logger } from '../log.js';
import type { RefusalCode, SessionTransport } from './refusals.js';

export const DEFAULT_REFUSAL_LOG_INTERVAL_MS = 10_000;
const MAX_EXAMPLES = 5;
/** Ids and addresses come from the network: cut to what a log line can afford. */
const MAX_ID_CHARS = 128;

export interface RefusalEvent {
  code: RefusalCode;
  transport: SessionTransport;
  /** The device id the peer claimed, if any (unauthenticated: shown, never trusted). */
  device?: string | undefined;
  remote?: string | undefined;
  message: string;
  /** Bad input from a device (warn) rather than an admission refusal (info). */
  input: boolean;
}

type Example = { code: RefusalCode; transport: SessionTransport; device?: string; remote?: string };

export class RefusalLog {
  private timer: NodeJS.Timeout | undefined;
  private counts = new Map<string, number>();
  private examples: Example[] = [];
  private total = 0;
  private input = false;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_REFUSAL_LOG_INTERVAL_MS,
  ) {}

  note(e: RefusalEvent): void {
    const device = e.device?.slice(0, MAX_ID_CHARS) || undefined;
    if (this.timer === undefined) {
      // Quiet until now: say it at once, then hold the next ones for an interval.
      this.timer = setTimeout(() => this.tick(), this.intervalMs).unref();
      this.log[e.input ? 'warn' : 'info']({ code: e.code, transport: e.transport, device, remote: e.remote }, `device refused (${e.code}): ${e.message}. ${hint(e.input)}`);
      return;
    }
    const key = `${e.code}/${e.transport}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.total++;
    if (e.input) this.input = true;
    if (this.examples.length < MAX_EXAMPLES) {
      const x: Example = { code: e.code, transport: e.transport };
      if (device) x.device = device;
      if (e.remote) x.remote = e.remote;
      this.examples.push(x);
    }
  }

  /** Writes what is held back (call on shutdown). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private tick(): void {
    // Nothing held back: the interval was quiet, so the next refusal is logged at once again.
    if (this.flush()) this.timer = setTimeout(() => this.tick(), this.intervalMs).unref();
    else this.timer = undefined;
  }

  private flush(): boolean {
    if (this.total === 0) return false;
    const refused: Record<string, number> = {};
    for (const [key, n] of this.counts) refused[key] = n;
    this.log[this.input ? 'warn' : 'info'](
      { refused, total: this.total, examples: this.examples, intervalMs: this.intervalMs },
      `${this.total} more device refusals (by code/transport; see gateway_refusals_total). ${hint(this.input)}`,
    );
    this.counts = new Map();
    this.examples = [];
    this.total = 0;
    this.input = false;
    return true;
  }
}

function hint(input: boolean): string {
  return input
    ? "Fix the device's encoder or client; the codes are listed in the README (Refusals) and devices/PROTOCOL.md"
    : 'Check the device ids, tokens and --max-devices; the codes are listed in the README (Refusals)';
}
