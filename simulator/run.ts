/**
 * A whole simulation: splits the devices across worker threads (or runs one fleet in this thread
 * with workers 0), sums what they report, stops after the duration (or on stop()), drains and
 * returns the summary.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { countError, emptyCounters, REPORT_MS, sumCounters, type FleetCounters } from './counters.js';
import { Fleet, type FleetPlan } from './fleet.js';
import { difference, percentile, total } from './latency.js';
import type { SimulatorOptions } from './options.js';
import { buildSummary, type Summary } from './summary.js';
import type { FromWorker, ToWorker } from './worker.js';

/** What the status line shows, every REPORT_MS. */
export interface StatusSnapshot {
  elapsedS: number;
  phase: 'running' | 'draining';
  counters: FleetCounters;
  /** First-time frames per second over the last ~2 s. */
  framesPerSecond: number;
  /** Ack latency of the frames acked in the last ~2 s (all so far when none were). */
  ackP50: number | null;
  ackP99: number | null;
}

export interface SimulationHooks {
  onStatus?(s: StatusSnapshot): void;
}

interface FleetHandle {
  /** Resolves once the fleet is built (a worker has loaded and made its devices). */
  ready: Promise<void>;
  start(t0: number): void;
  counters(): FleetCounters;
  stop(drainMs: number): Promise<FleetCounters>;
}

/** Frames/s and recent ack latency in the status line are measured over about this long (workers report every 500 ms, so a shorter window would alias). */
const STATUS_WINDOW_MS = 2000;
/** A worker that has not answered stop() this long after its drain is terminated (its last report counts). */
const WORKER_GRACE_MS = 20_000;

function workerUrl(): URL {
  const sibling = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  // Running from source (tests): the built worker.
  const built = new URL('../dist/simulator/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error('worker threads need the built simulator (npm run build); or run with workers: 0');
}

class WorkerFleet implements FleetHandle {
  readonly ready: Promise<void>;
  readonly #worker: Worker;
  #latest: FleetCounters;
  #done: Promise<FleetCounters>;
  #resolveDone!: (c: FleetCounters) => void;

  constructor(plan: FleetPlan) {
    this.#latest = emptyCounters();
    this.#latest.devices = plan.to - plan.from;
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
    let resolveReady!: () => void;
    this.ready = new Promise((resolve) => (resolveReady = resolve));
    this.#worker = new Worker(workerUrl(), { workerData: plan });
    this.#worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') return resolveReady();
      this.#latest = m.counters;
      if (m.type === 'done') {
        this.#resolveDone(m.counters);
        void this.#worker.terminate();
      }
    });
    this.#worker.on('error', (err) => {
      // Its devices stop for good: count them as unable to run, so the summary is not ok.
      this.#latest = { ...this.#latest, refused: plan.to - plan.from, connected: 0 };
      countError(this.#latest, 'WORKER_FAILED');
      process.stderr.write(`simulate: a worker failed: ${err.stack ?? err.message}\n`);
    });
    this.#worker.on('exit', () => {
      resolveReady();
      this.#resolveDone(this.#latest);
    });
  }

  start(t0: number): void {
    this.#worker.postMessage({ type: 'start', t0 } satisfies ToWorker);
  }

  counters(): FleetCounters {
    return this.#latest;
  }

  async stop(drainMs: number): Promise<FleetCounters> {
    this.#worker.postMessage({ type: 'stop', drainMs } satisfies ToWorker);
    const timer = setTimeout(() => void this.#worker.terminate(), drainMs + WORKER_GRACE_MS);
    const c = await this.#done;
    clearTimeout(timer);
    return c;
  }
}

export class Simulation {
  readonly options: SimulatorOptions;
  /** The in-thread fleet (workers 0), for tests and the demo; undefined with worker threads. */
  readonly fleet: Fleet | undefined;
  /** Resolves when every fleet is built and started (worker threads take a moment to load and make their devices). */
  readonly ready: Promise<void>;
  /** Resolves with the summary once stopped and drained. */
  readonly done: Promise<Summary>;
  /** When the fleets started, ms since 1970 (0 until ready): the duration and the outage window count from it. */
  t0 = 0;
  readonly #handles: FleetHandle[];
  readonly #hooks: SimulationHooks;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  #durationTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #resolve!: (s: Summary) => void;
  /** Recent snapshots (oldest first, up to STATUS_WINDOW_MS old): rates and recent latency are taken over them. */
  readonly #history: { at: number; sent: number; latency: Uint32Array }[] = [];

  private constructor(options: SimulatorOptions, hooks: SimulationHooks) {
    this.options = options;
    this.#hooks = hooks;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    const plans = split(options);
    if (options.workers === 0) {
      const fleet = new Fleet(plans[0]!);
      this.fleet = fleet;
      this.#handles = [{ ready: Promise.resolve(), start: (t0) => fleet.start(t0), counters: () => fleet.counters(), stop: (ms) => fleet.stop(ms) }];
    } else {
      this.fleet = undefined;
      this.#handles = plans.map((p) => new WorkerFleet(p));
    }
    this.ready = Promise.all(this.#handles.map((h) => h.ready)).then(() => this.#begin());
  }

  #begin(): void {
    if (this.#stopping) return;
    this.t0 = Date.now();
    for (const h of this.#handles) h.start(this.t0);
    this.#statusTimer = setInterval(() => this.#status('running'), REPORT_MS);
    if (this.options.durationS > 0) this.#durationTimer = setTimeout(() => void this.stop(), this.options.durationS * 1000);
  }

  /** Builds the fleets and starts them as soon as they are ready (see `ready`); each device sends once connected. */
  static start(options: SimulatorOptions, hooks: SimulationHooks = {}): Simulation {
    return new Simulation(options, hooks);
  }

  /** The fleet's counters as last reported (workers report every 500 ms). */
  counters(): FleetCounters {
    return sumCounters(this.#handles.map((h) => h.counters()));
  }

  /** Stops sending, drains (up to drainS), closes every device; resolves with the summary. Idempotent. */
  stop(): Promise<Summary> {
    if (!this.#stopping) {
      this.#stopping = true;
      void this.#stop();
    }
    return this.done;
  }

  async #stop(): Promise<void> {
    await this.ready;
    if (this.#durationTimer !== undefined) clearTimeout(this.#durationTimer);
    const stoppedAt = Date.now();
    if (this.#statusTimer !== undefined) clearInterval(this.#statusTimer);
    this.#statusTimer = setInterval(() => this.#status('draining'), REPORT_MS);
    const finals = await Promise.all(this.#handles.map((h) => h.stop(this.options.drainS * 1000)));
    clearInterval(this.#statusTimer);
    const c = sumCounters(finals);
    this.#resolve(buildSummary(this.options, c, this.t0 === 0 ? 0 : (stoppedAt - this.t0) / 1000, (Date.now() - stoppedAt) / 1000));
  }

  #status(phase: StatusSnapshot['phase']): void {
    const onStatus = this.#hooks.onStatus;
    if (onStatus === undefined) return;
    const now = Date.now();
    const c = this.counters();
    const history = this.#history;
    while (history.length > 1 && now - history[1]!.at >= STATUS_WINDOW_MS) history.shift();
    const prev = history[0];
    const recent = prev ? difference(c.latency, prev.latency) : c.latency;
    const h = total(recent) > 0 ? recent : c.latency;
    const fps = prev && now > prev.at ? ((c.sent - prev.sent) * 1000) / (now - prev.at) : 0;
    history.push({ at: now, sent: c.sent, latency: c.latency.slice() });
    onStatus({ elapsedS: this.t0 === 0 ? 0 : (now - this.t0) / 1000, phase, counters: c, framesPerSecond: Math.max(0, fps), ackP50: percentile(h, 50), ackP99: percentile(h, 99) });
  }
}

/** Contiguous device ranges, one per worker (one range for workers 0). */
export function split(o: SimulatorOptions): FleetPlan[] {
  const parts = Math.max(1, Math.min(o.workers, o.devices));
  const plans: FleetPlan[] = [];
  for (let w = 0; w < parts; w++) {
    const from = Math.floor((o.devices * w) / parts);
    const to = Math.floor((o.devices * (w + 1)) / parts);
    plans.push({ options: o, from, to, connectRate: o.connectRate / parts });
  }
  return plans;
}

/** Runs a simulation to its end (duration, then drain) and returns the summary. */
export function runSimulation(options: SimulatorOptions, hooks: SimulationHooks = {}): Promise<Summary> {
  return Simulation.start(options, hooks).done;
}
