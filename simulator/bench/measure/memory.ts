/**
 * Memory per idle device connection: the server's RSS (/proc/<pid>/status) before any device, after
 * 1,000 and after 10,000 idle, authenticated connections. Per connection = growth / connections;
 * the 1,000 → 10,000 step is also given, which leaves out one-time costs (code, heap warm-up).
 * Kernel socket buffers are not in RSS.
 */
import { httpGet, rssBytes, sleep, type Child } from '../procs.js';
import { metric, startServer, type BenchKeys, type RunningServer, type ServerKind } from '../servers.js';
import { loadStats, median, startLoad } from './windows.js';

export interface MemoryResult {
  connections: number;
  rssBefore: number;
  rssAfter: number;
  /** Bytes per connection over all of them. */
  perConnection: number;
  /** Bytes per connection from the first 1,000 to all. */
  marginal: number;
  closed: number;
  /** Gateway only: growth of the JS heap in use (/metrics), bytes per connection. */
  heapPerConnection?: number;
}

/** JS heap in use, from the gateway's /metrics (undefined for other servers). */
async function heapUsed(server: RunningServer, keys: BenchKeys): Promise<number | undefined> {
  if (server.kind !== 'gateway') return undefined;
  try {
    const text = await httpGet(server.port, '/metrics', { authorization: `Bearer ${keys.operatorToken}` }, 5000);
    return metric(text, 'gateway_nodejs_heap_size_used_bytes');
  } catch {
    return undefined;
  }
}

/** RSS settles in steps (heap growth, GC): the median of 8 readings 250 ms apart. */
async function steadyRss(pid: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 8; i++) {
    xs.push(rssBytes(pid));
    if (i < 7) await sleep(250);
  }
  return median(xs);
}

export async function memoryPerConnection(kind: ServerKind, keys: BenchKeys, connections: number): Promise<MemoryResult> {
  const server = await startServer(kind, keys);
  const loads: Child[] = [];
  const first = Math.min(1000, connections);
  try {
    await sleep(500);
    const heapBefore = await heapUsed(server, keys);
    const rssBefore = await steadyRss(server.child.pid);
    const open = async (count: number, from: number) => {
      const l = startLoad({ mode: 'ws-idle', host: '127.0.0.1', port: server.port, fleetKey: keys.fleetKey, devices: count, first: from }, `loadgen-idle-${from}`);
      loads.push(l);
      await l.next('ready', 90_000);
    };
    await open(first, 0);
    await sleep(500);
    const rssFirst = await steadyRss(server.child.pid);
    await open(connections - first, first);
    await sleep(1000);
    const rssAfter = await steadyRss(server.child.pid);
    const heapAfter = await heapUsed(server, keys);
    let closed = 0;
    for (const l of loads) closed += (await loadStats(l)).closed;
    return {
      connections,
      rssBefore,
      rssAfter,
      perConnection: (rssAfter - rssBefore) / connections,
      marginal: (rssAfter - rssFirst) / (connections - first),
      closed,
      ...(heapBefore !== undefined && heapAfter !== undefined ? { heapPerConnection: (heapAfter - heapBefore) / connections } : {}),
    };
  } finally {
    await server.stop();
    for (const l of loads) await l.stop();
  }
}
