/**
 * Alarm notifications over HTTP: each alarm change is POSTed as an AlarmMessage (JSON, README
 * "Alarms") to the global --alarm-webhook and to its rule's `webhook`. A delivery that fails (no
 * answer within the timeout, a network error, HTTP 408, 429 or 5xx) is retried with backoff
 * (devices/sdk/backoff.ts, equal jitter) up to `attempts` times; any other 4xx is not retried. A
 * delivery that runs out of attempts, or finds the queue full, is dead-lettered: counted
 * (gateway_alarm_webhook_deliveries_total{outcome="dead_letter"}) and logged. The queue is bounded.
 */
import type { Alarm, AlarmMessage } from '../../devices/api/json.js';
import { Backoff } from '../../devices/sdk/backoff.js';
import type { Logger } from '../log.js';

export interface WebhookOptions {
  /** Global webhook URL (--alarm-webhook). */
  url?: string | undefined;
  /** Deliveries waiting or in flight at most; more are dead-lettered. */
  maxQueue?: number;
  /** Tries per delivery (the first included). */
  attempts?: number;
  initialMs?: number;
  maxMs?: number;
  /** One try's time limit. */
  timeoutMs?: number;
  /** Deliveries in flight at once. */
  concurrency?: number;
  log?: Logger | undefined;
}

/** Defaults: 6 tries over about 1.5 to 2 minutes (delays 2-4, 4-8, 8-16, 16-32, 32-64 s). */
export const WEBHOOK_DEFAULTS = { maxQueue: 1000, attempts: 6, initialMs: 4000, maxMs: 64_000, timeoutMs: 10_000, concurrency: 4 };

interface Delivery {
  url: string;
  body: string;
  alarmId: string;
  backoff: Backoff;
  tries: number;
  dueAt: number;
}

export class Webhooks {
  private readonly o: typeof WEBHOOK_DEFAULTS & WebhookOptions;
  private readonly waiting: Delivery[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly aborts = new Set<AbortController>();
  /** Outcomes (metrics): delivered (2xx), retried (a try failed, another follows), dead_letter (given up). */
  readonly counts = { delivered: 0, retried: 0, dead_letter: 0 };

  constructor(opts: WebhookOptions = {}) {
    this.o = { ...WEBHOOK_DEFAULTS, ...opts };
  }

  /** Queues the alarm's change for the global webhook and `ruleUrl` (when given). */
  notify(alarm: Alarm, ruleUrl: string | undefined): void {
    if (this.closed) return;
    const urls = new Set<string>();
    if (this.o.url) urls.add(this.o.url);
    if (ruleUrl) urls.add(ruleUrl);
    if (urls.size === 0) return;
    const body = JSON.stringify({ type: 'alarm', full: false, alarms: [alarm] } satisfies AlarmMessage);
    for (const url of urls) {
      if (this.waiting.length + this.inFlight >= this.o.maxQueue) {
        this.deadLetter({ url, alarmId: alarm.id }, `the webhook queue is full (${this.o.maxQueue} deliveries waiting): is ${url} down?`);
        continue;
      }
      this.waiting.push({ url, body, alarmId: alarm.id, backoff: new Backoff({ initialMs: this.o.initialMs, maxMs: this.o.maxMs, random: Math.random, jitter: 'equal' }), tries: 0, dueAt: 0 });
    }
    this.pump();
  }

  /** Deliveries waiting or in flight. */
  get pending(): number {
    return this.waiting.length + this.inFlight;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const a of this.aborts) a.abort();
    if (this.waiting.length > 0) this.o.log?.warn({ deliveries: this.waiting.length }, 'alarm webhook deliveries still waiting at shutdown were not sent');
    this.waiting.length = 0;
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    let next = Infinity;
    for (let i = 0; i < this.waiting.length && this.inFlight < this.o.concurrency; ) {
      const d = this.waiting[i]!;
      if (d.dueAt <= now) {
        this.waiting.splice(i, 1);
        void this.send(d);
      } else {
        next = Math.min(next, d.dueAt);
        i++;
      }
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (next !== Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, next - now));
      this.timer.unref();
    }
  }

  private async send(d: Delivery): Promise<void> {
    this.inFlight++;
    d.tries++;
    const abort = new AbortController();
    this.aborts.add(abort);
    const t = setTimeout(() => abort.abort(), this.o.timeoutMs);
    let failure: string | undefined;
    let retry = true;
    try {
      const res = await fetch(d.url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'telemetry-gateway-alarms' }, body: d.body, signal: abort.signal });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) {
        failure = `HTTP ${res.status}`;
        retry = res.status === 408 || res.status === 429 || res.status >= 500;
      }
    } catch (err) {
      failure = abort.signal.aborted ? `no answer within ${this.o.timeoutMs} ms` : (err as Error).message;
    } finally {
      clearTimeout(t);
      this.aborts.delete(abort);
      this.inFlight--;
    }
    if (this.closed) return;
    if (failure === undefined) this.counts.delivered++;
    else if (!retry || d.tries >= this.o.attempts) this.deadLetter(d, `${failure} after ${d.tries} tr${d.tries === 1 ? 'y' : 'ies'}${retry ? '' : ' (not retried: the server refused the request)'}`);
    else {
      this.counts.retried++;
      d.dueAt = Date.now() + d.backoff.next();
      this.waiting.push(d);
    }
    this.pump();
  }

  private deadLetter(d: { url: string; alarmId: string }, why: string): void {
    this.counts.dead_letter++;
    this.o.log?.warn({ url: redactUrl(d.url), alarm: d.alarmId }, `alarm webhook delivery given up: ${why}. Check the receiver; the alarm itself is in GET /api/alarms`);
  }
}

/** A URL without its credentials, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
