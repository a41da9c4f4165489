/**
 * History with the in-memory store in a cluster: each instance keeps the points it ingested, so a
 * device's history is spread over the instances that took its frames (its holder, those that held it
 * before, every bridge gateway). A history request asks every other instance online over the
 * backbone (request/response with a correlation id and a timeout) and merges their answers with its
 * own. When an instance that holds or held the device is gone, or does not answer in time, the
 * answer is the error HISTORY_OWNER_UNAVAILABLE (503), never a silently thinner chart.
 * With InfluxDB none of this runs: every instance reads the database.
 *
 * Request (history/{instance}): {"id", "from", "q": HistoryQuery}; answer (answers/{from}):
 * {"id", "points": HistoryBucket[]} or {"id", "error": {"code", "message"}}.
 */
import type { HistoryBucket } from '../../devices/api/json.js';
import { ApiError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HistoryQuery, Storage } from '../storage/storage.js';
import type { Backbone } from './backbone.js';

export const HISTORY_TIMEOUT_MS = 3000;

/** When an instance held a device: its first connection there, and when it left (undefined: it holds it now). */
export interface HeldSpan {
  first: number;
  until: number | undefined;
}

interface Waiting {
  left: Set<string>;
  answers: HistoryBucket[][];
  failed: string | undefined;
  done(): void;
}

export class RemoteHistory {
  private next = 0;
  private readonly waiting = new Map<string, Waiting>();
  /** Requests answered for other instances, and requests of ours that ended without every answer. */
  served = 0;
  unavailable = 0;

  constructor(
    private readonly backbone: Backbone,
    private readonly storage: Pick<Storage, 'history'>,
    /** The instances known to have held a device (undefined when none: bridged or never seen). */
    private readonly holdersOf: (device: string) => ReadonlyMap<string, HeldSpan> | undefined,
    private readonly log: Logger,
    private readonly timeoutMs = HISTORY_TIMEOUT_MS,
  ) {}

  attach(): void {
    this.backbone.onHistoryRequest((json) => void this.serve(json));
    this.backbone.onHistoryAnswer((json) => this.answer(json));
  }

  /** The device's history from every instance, merged; throws HISTORY_OWNER_UNAVAILABLE when part of it cannot be had. */
  async history(q: HistoryQuery): Promise<HistoryBucket[]> {
    const me = this.backbone.instance;
    const lost = this.lostPart(q);
    if (lost !== undefined) {
      this.unavailable++;
      throw unavailable(`${lost}; use InfluxDB (--influx-url) so every instance reads one database`);
    }
    const peers = [...this.backbone.peers];
    const id = `${me}-${++this.next}`;
    const w: Waiting = { left: new Set(peers), answers: [], failed: undefined, done: () => {} };
    const all = new Promise<void>((resolve) => (w.done = resolve));
    if (peers.length > 0) this.waiting.set(id, w);
    for (const p of peers) {
      if (!this.backbone.requestHistory(p, JSON.stringify({ id, from: me, q }))) w.failed ??= `the cluster backbone is down, so gateway instance ${p} could not be asked`;
    }
    const local = await this.storage.history(q);
    if (peers.length > 0 && w.failed === undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, this.timeoutMs)))]);
      clearTimeout(timer);
    }
    this.waiting.delete(id);
    if (w.failed === undefined && w.left.size > 0) w.failed = `gateway instance(s) ${[...w.left].join(', ')} did not answer within ${this.timeoutMs} ms`;
    if (w.failed !== undefined) {
      this.unavailable++;
      throw unavailable(`part of this history is kept in memory by other instances: ${w.failed}; retry, or use InfluxDB (--influx-url) so every instance reads one database`);
    }
    return merge([local, ...w.answers], q);
  }

  /**
   * Why part of this window's points cannot be had, or undefined: an instance that held the device
   * within the window is gone, or restarted since (memory is not kept through a restart).
   */
  private lostPart(q: HistoryQuery): string | undefined {
    const held = this.holdersOf(q.device);
    if (held === undefined) return undefined;
    const b = this.backbone;
    for (const [instance, span] of held) {
      // Its points are older than the window: nothing of the window is missing.
      if (span.until !== undefined && span.until < q.from) continue;
      const started = instance === b.instance ? b.startedAt : b.peerStartedAt.get(instance);
      if (started === undefined) return `the device's points are kept in memory by gateway instance ${instance}, which is not in the cluster now (an instance that crashed lost them; one that comes back answers again)`;
      if (span.first < started && q.from <= started) return `gateway instance ${instance} held the device before it restarted, and what it kept in memory went with the restart`;
    }
    return undefined;
  }

  private async serve(json: string): Promise<void> {
    const m = JSON.parse(json) as { id?: unknown; from?: unknown; q?: HistoryQuery };
    if (typeof m.id !== 'string' || typeof m.from !== 'string' || typeof m.q?.device !== 'string') return;
    let body: string;
    try {
      body = JSON.stringify({ id: m.id, by: this.backbone.instance, points: await this.storage.history(m.q) });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      body = JSON.stringify({ id: m.id, by: this.backbone.instance, error: { code: e.code ?? 'STORAGE_ERROR', message: e.message ?? String(err) } });
    }
    this.served++;
    this.backbone.answerHistory(m.from, body);
  }

  private answer(json: string): void {
    const m = JSON.parse(json) as { id?: unknown; by?: unknown; points?: unknown; error?: { code?: string; message?: string } };
    const w = typeof m.id === 'string' ? this.waiting.get(m.id) : undefined;
    if (!w || typeof m.by !== 'string' || !w.left.delete(m.by)) return;
    if (m.error) {
      w.failed ??= `gateway instance ${m.by} could not read its part (${m.error.code}: ${m.error.message})`;
      this.log.warn({ instance: m.by, code: m.error.code }, 'another instance could not read its part of a history; the request answers HISTORY_OWNER_UNAVAILABLE');
    } else if (Array.isArray(m.points)) w.answers.push(m.points as HistoryBucket[]);
    if (w.left.size === 0 || w.failed !== undefined) w.done();
  }
}

function unavailable(message: string): ApiError {
  return new ApiError(503, 'HISTORY_OWNER_UNAVAILABLE', message);
}

/**
 * Merges the answers of several stores for one query. Raw points stay raw while they fit in
 * `points`; otherwise everything goes into the fixed-width buckets the stores use themselves
 * (storage/series.ts), weighted by count.
 */
export function merge(parts: HistoryBucket[][], q: HistoryQuery): HistoryBucket[] {
  const nonEmpty = parts.filter((p) => p.length > 0);
  if (nonEmpty.length === 0) return [];
  if (nonEmpty.length === 1) return nonEmpty[0]!;
  const all = nonEmpty.flat();
  if (all.length <= q.points && all.every((b) => b.count === 1)) return all.sort((a, b) => a.t - b.t);
  const width = Math.max(1, Math.ceil((q.to - q.from + 1) / q.points));
  const by = new Map<number, HistoryBucket>();
  for (const b of all) {
    const t = q.from + Math.floor((b.t - q.from) / width) * width;
    const cur = by.get(t);
    if (!cur) by.set(t, { t, mean: b.mean, min: b.min, max: b.max, count: b.count });
    else {
      cur.mean = (cur.mean * cur.count + b.mean * b.count) / (cur.count + b.count);
      cur.count += b.count;
      if (b.min < cur.min) cur.min = b.min;
      if (b.max > cur.max) cur.max = b.max;
    }
  }
  return [...by.values()].sort((a, b) => a.t - b.t);
}
