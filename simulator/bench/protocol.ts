/**
 * What the orchestrator (bench.ts) and its child processes (loadgen.ts, servers/storage-drain.ts)
 * say to each other over the Node IPC channel.
 */
import type { LatencySummary } from './load/latency.js';

export interface DashboardSpec {
  kind: 'live' | 'ws-baseline';
  operatorToken?: string;
  /** Gateway only: a user's fleet view + one device page, or every device's stream (load/dashboard.ts). */
  view?: 'all' | 'page';
}

export type LoadConfig =
  | {
      mode: 'ws-flood';
      host: string;
      port: number;
      fleetKey: string;
      devices: number;
      framesPerWrite: number;
      /** Frames in flight beyond what the server has counted at first (load/window.ts)… */
      window: number;
      /** …then this many ms of the server's own recent throughput. */
      backlogMs: number;
      /**
       * Where the server's count is: its hot-counter file (bench servers; `divisor` turns the sink's
       * bytes into frames), or the gateway's acks.
       */
      consumed: { file: string; divisor: number } | 'acks';
      dashboard?: DashboardSpec;
    }
  | {
      mode: 'ws-paced';
      host: string;
      port: number;
      fleetKey: string;
      devices: number;
      ratePerSec: number;
      warmupMs: number;
      windowMs: number;
      /** None: the server has no dashboard (the count-only ceiling); only its CPU is measured. */
      dashboard?: DashboardSpec;
    }
  | {
      /** One QoS 1 PUBLISH per frame from each of `devices` MQTT clients; one subscriber times the probes. */
      mode: 'mqtt-paced';
      host: string;
      port: number;
      fleetKey: string;
      devices: number;
      ratePerSec: number;
      warmupMs: number;
      windowMs: number;
    }
  | { mode: 'ws-idle'; host: string; port: number; fleetKey: string; devices: number; /** Index of the first device id. */ first?: number }
  | {
      mode: 'mqtt-flood';
      host: string;
      port: number;
      fleetKey: string;
      publishers: number;
      qos: 0 | 1;
      framesPerWrite: number;
      /** Count deliveries at a subscriber (plain brokers); the gateway counts its own ingest. */
      subscriber: boolean;
    }
  | { mode: 'influx-raw'; url: string; db: string; rp: string; devices: number; batchPoints: number; inFlight: number }
  | {
      /** JSON telemetry (load/json.ts): MQTT QoS 1 with seq, or HTTP POSTs without; counted by the gateway's answers. */
      mode: 'json-mqtt' | 'json-http';
      host: string;
      port: number;
      fleetKey: string;
      devices: number;
      /** Messages (MQTT) or requests (HTTP) each device keeps unanswered at most. */
      inFlight: number;
    };

/** Orchestrator → child. */
export type Command = { cmd: 'start' } | { cmd: 'stats' } | { cmd: 'stop' } | { cmd: 'exit' };

export interface LoadStats {
  /** Frames (or points) the generator handed to sockets. */
  sent: number;
  /** Deliveries counted on the client side (dashboard messages, subscriber PUBLISHes, points stored). */
  delivered: number;
  dashboardBytes: number;
  downstreamBytes: number;
  /** Connections the server closed. */
  closed: number;
  /** This process's clock (ms since epoch) when the stats were taken. */
  at: number;
  /** Frames the gateway acked by its flush at `ackedAt` (its clock); 0 for servers that do not ack. */
  acked: number;
  ackedAt: number;
  /** Flow-control window in frames (flood runs). */
  window?: number;
}

/** Child → orchestrator. */
export type Report =
  | { type: 'ready'; connected: number; connectMs: number }
  | { type: 'stats'; stats: LoadStats }
  | { type: 'latency'; latency: LatencySummary; sentInWindow: number; lagTicks: number; unknown: number }
  | { type: 'error'; message: string };
