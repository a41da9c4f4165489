/**
 * A worker thread's entry: builds one Fleet, says 'ready', starts it on 'start' (every worker with
 * the same t0), reports its counters to the main thread every REPORT_MS (a small structured clone),
 * and on 'stop' drains, closes and sends 'done' with the final counters.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { REPORT_MS, type FleetCounters } from './counters.js';
import { Fleet, type FleetPlan } from './fleet.js';

export type ToWorker = { type: 'start'; t0: number } | { type: 'stop'; drainMs: number };
export type FromWorker = { type: 'ready' } | { type: 'counters'; counters: FleetCounters } | { type: 'done'; counters: FleetCounters };

if (parentPort !== null) {
  const port = parentPort;
  const fleet = new Fleet(workerData as FleetPlan);
  const post = (m: FromWorker): void => port.postMessage(m);
  let report: ReturnType<typeof setInterval> | undefined;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'start') {
      fleet.start(m.t0);
      report ??= setInterval(() => post({ type: 'counters', counters: fleet.counters() }), REPORT_MS);
      return;
    }
    void fleet.stop(m.drainMs).then((counters) => {
      if (report !== undefined) clearInterval(report);
      post({ type: 'done', counters });
      port.close();
    });
  });
  post({ type: 'ready' });
}
