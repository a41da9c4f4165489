/**
 * The systems the scaling section compares, started only through the gateway's CLI flags (so the
 * section measures whatever cluster design the checkout has): one gateway with `--workers N`, or
 * a cluster of separate gateway processes sharing a Mosquitto (`--cluster-url`). Nothing is
 * pinned: workers and instances may use every core. Each says which processes are the gateway's
 * (their CPU is summed) and which is the broker's (reported apart).
 */
import { startMosquitto, type MosquittoService } from '../../services/index.js';
import { descendants, httpGet, sleep } from '../procs.js';
import { startServer, type BenchKeys, type RunningServer } from '../servers.js';

export type SystemSpec = { kind: 'workers'; workers: number } | { kind: 'cluster'; instances: number };

export interface RunningSystem {
  spec: SystemSpec;
  /** One port per instance; the fleet is split over them (one port for --workers: the kernel spreads). */
  devicePorts: number[];
  /** The gateway's processes by name, now (a --workers gateway: the primary and its workers). */
  gatewayProcesses(): { name: string; pid: number }[];
  broker?: { name: string; pid: number };
  stop(): Promise<void>;
}

export function describeSystem(s: SystemSpec): string {
  return s.kind === 'workers' ? `\`--workers ${s.workers}\`` : `cluster of ${s.instances} instances on one Mosquitto`;
}

export async function startSystem(spec: SystemSpec, keys: BenchKeys): Promise<RunningSystem> {
  return spec.kind === 'workers' ? startWorkers(spec, keys) : startCluster(spec, keys);
}

async function startWorkers(spec: Extract<SystemSpec, { kind: 'workers' }>, keys: BenchKeys): Promise<RunningSystem> {
  const server = await startServer('gateway', keys, ['--workers', String(spec.workers)], false);
  try {
    // Devices that connect before every worker listens all land on the early ones: wait until
    // /healthz, over fresh connections the kernel spreads, has been answered by every worker.
    if (spec.workers > 1) await waitWorkersListening(server.port, spec.workers);
    return {
      spec,
      devicePorts: [server.port],
      gatewayProcesses: () => {
        const root = server.child.pid;
        const kids = descendants(root);
        return kids.length === 0 ? [{ name: 'gateway', pid: root }] : [{ name: 'primary', pid: root }, ...kids.map((pid, i) => ({ name: `worker ${i + 1}`, pid }))];
      },
      stop: () => server.stop(),
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function startCluster(spec: Extract<SystemSpec, { kind: 'cluster' }>, keys: BenchKeys): Promise<RunningSystem> {
  const broker: MosquittoService = await startMosquitto({ tempPrefix: 'bench-scale-' });
  const instances: RunningServer[] = [];
  const stop = async () => {
    await Promise.all(instances.map((s) => s.stop()));
    await broker.stop(3000);
  };
  try {
    // One after the other: each picks its own free ports.
    for (let i = 0; i < spec.instances; i++) {
      instances.push(await startServer('gateway', keys, ['--cluster-url', broker.url, '--instance-id', `bench-${i + 1}`], false));
    }
    // /readyz includes the backbone connection: measure a cluster, not instances still joining it.
    for (const s of instances) await waitReady(s);
    return {
      spec,
      devicePorts: instances.map((s) => s.port),
      gatewayProcesses: () => instances.map((s, i) => ({ name: `instance ${i + 1}`, pid: s.child.pid })),
      broker: { name: 'mosquitto', pid: broker.pid },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitWorkersListening(port: number, workers: number, timeoutMs = 15_000): Promise<void> {
  const pids = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  while (pids.size < workers) {
    if (performance.now() > deadline) throw new Error(`only ${pids.size} of ${workers} workers answered /healthz within ${timeoutMs} ms`);
    for (let i = 0; i < 4 * workers; i++) {
      // httpGet opens a new connection each time (no keep-alive), so each may reach another worker.
      const answer = await httpGet(port, '/healthz', {}, 2000).catch(() => undefined);
      const pid = answer ? (JSON.parse(answer) as { pid?: number }).pid : undefined;
      if (typeof pid === 'number') pids.add(pid);
    }
    if (pids.size < workers) await sleep(100);
  }
}

async function waitReady(s: RunningServer, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      await httpGet(s.port, '/readyz', {}, 2000);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() > deadline) throw new Error(`cluster instance on port ${s.port} not ready within ${timeoutMs} ms: ${last.slice(0, 300)}`);
    await sleep(200);
  }
}
