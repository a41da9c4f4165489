/** The shapes the gateway sends: HTTP API bodies (README "HTTP API") and /live messages (gateway/LIVE.md). */

export type OfflineCause = 'closed' | 'timeout' | 'connection_lost' | 'replaced' | 'kicked' | 'slow_consumer' | 'shutdown';

export interface LastValue {
  value: number | boolean;
  time: number;
}

export interface DeviceCounters {
  connections?: number;
  frames?: number;
  readings?: number;
  duplicates?: number;
  gaps?: number;
  errors?: number;
}

/** GET /api/devices items and the live `fleet` stream's DeviceSummary (the live one may carry fewer fields). */
export interface DeviceSummary {
  id: string;
  online: boolean;
  lastSeen: number | null;
  type?: string | null;
  name?: string | null;
  transport?: string | null;
  /** In a cluster: the gateway instance holding the connection. */
  instance?: string | null;
  connectedAt?: number | null;
  disconnectedAt?: number | null;
  offlineCause?: OfflineCause | null;
  offlineDetail?: string | null;
  counters?: DeviceCounters;
  lastError?: string | null;
  last?: Record<string, LastValue>;
}

/** The device-type schema, shared with the gateway and the simulator. */
export type { ChannelSpec, DeviceTypeSpec } from '../../devices/device-types.js';

/** GET /api/devices/{id}/history bucket. */
export interface HistoryPoint {
  t: number;
  mean: number;
  min: number;
  max: number;
  count: number;
}

export type CommandState = 'queued' | 'sent' | 'delivered' | 'acked' | 'failed' | 'expired' | 'timed_out';

export const FINAL_COMMAND_STATES: ReadonlySet<CommandState> = new Set(['acked', 'failed', 'expired', 'timed_out']);

export interface CommandRecord {
  id: string;
  deviceId: string;
  name: string;
  args: unknown;
  state: CommandState;
  createdAt: number;
  expiresAt: number;
  timeoutMs: number;
  sentAt?: number;
  result?: unknown;
  error?: string;
  history: { state: CommandState; at: number; note?: string }[];
}

export interface GatewayStats {
  devicesOnline?: number;
  devicesKnown?: number;
  framesPerSec?: number;
  readingsPerSec?: number;
  frames?: number;
  readings?: number;
  duplicates?: number;
  gaps?: number;
  errors?: number;
  errorsByCode?: Record<string, number>;
  liveClients?: number;
  liveDropped?: number;
  commands?: Record<string, number>;
  storage?: { kind?: string; status?: string; detail?: string };
}

/** One `device:<id>` message: points per channel as [time ms, value] pairs. */
export interface DeviceMessage {
  type: 'device';
  id: string;
  seq: number;
  points: Record<string, [number, number | boolean][]>;
  downsampled?: boolean;
}

export type LiveMessage =
  | { type: 'hello'; serverTime: number; bootId?: string; flushMs?: number; budgetBytes?: number }
  | { type: 'fleet'; full?: boolean; devices: DeviceSummary[] }
  | { type: 'stats'; stats: GatewayStats }
  | DeviceMessage
  | { type: 'command'; command: CommandRecord }
  | { type: 'missed'; count: number; streams: string[] }
  | { type: 'resume'; stream: string; from: number; status: 'ok' | 'too_old' }
  | { type: 'error'; code: string; message: string };
