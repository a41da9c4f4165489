/**
 * Max sustained ingest: N device connections flooding 64-byte frames (pre-encoded, large writes),
 * one dashboard following everything where the server has one, counted on the server side.
 */
import type { Child } from '../procs.js';
import { LOAD_CORE, startServer, type BenchKeys, type ServerKind } from '../servers.js';
import { sample, startLoad, type Sampled, type WindowPlan } from './windows.js';

export interface IngestOptions {
  kind: ServerKind;
  devices: number;
  keys: BenchKeys;
  gatewayArgs?: string[];
  /** Flow-control window in frames (default WINDOW_FRAMES). */
  window?: number;
  plan?: WindowPlan;
  /** Server and generator not pinned to cores: they share both (for --workers). */
  unpinned?: boolean;
}

export interface IngestResult extends Sampled {
  connectMs: number;
}

/**
 * Flow control (load/window.ts): at most BACKLOG_MS of the server's own recent throughput in flight
 * beyond its count (at least 8,192 frames), starting from 64 Ki frames. Long enough to keep any of
 * these servers busy through the delay of its count (2 ms counter files, the gateway's 50 ms ack
 * interval), short enough that no event loop turn reads much more than that.
 */
export const WINDOW_FRAMES = 65_536;
export const BACKLOG_MS = 100;

/** Frames per write: large for few connections; smaller for 10,000 so the blocks fit in memory. */
export function framesPerWrite(devices: number): number {
  return devices >= 1000 ? 64 : 256;
}

export async function ingest(o: IngestOptions): Promise<IngestResult> {
  const server = await startServer(o.kind, o.keys, o.gatewayArgs, !o.unpinned);
  let load: Child | undefined;
  try {
    load = startLoad({
      mode: 'ws-flood',
      host: '127.0.0.1',
      port: server.port,
      fleetKey: o.keys.fleetKey,
      devices: o.devices,
      framesPerWrite: framesPerWrite(o.devices),
      window: o.window ?? WINDOW_FRAMES,
      backlogMs: BACKLOG_MS,
      consumed: server.consumed,
      ...(server.dashboard ? { dashboard: server.dashboard } : {}),
    }, 'loadgen', o.unpinned ? undefined : LOAD_CORE);
    const ready = await load.next('ready', 90_000);
    try {
      const s = await sample(load, server.child.pid, (l) => server.count(l), o.plan);
      return { ...s, connectMs: ready.connectMs };
    } catch (err) {
      // Say what the gateway itself counted, if it answers.
      const m = await server.metricsCount().then(
        (c) => `; gateway_frames_total ${c.frames} (answered in ${c.answerMs} ms)`,
        () => '',
      );
      throw new Error(`${(err as Error).message}${m}`);
    }
  } finally {
    // The server first, so the TIME_WAIT sockets are on its side, not the generator's ports.
    await server.stop();
    await load?.stop();
  }
}
