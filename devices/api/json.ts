/**
 * The JSON the gateway speaks to operators: HTTP API bodies (README "HTTP API", "Commands"), the
 * `/live` WebSocket and `/api/live` Server-Sent Events messages (gateway/LIVE.md). The gateway
 * builds its answers against these types, the dashboard and the tests read them with them: one
 * copy, so the two ends cannot drift apart.
 *
 * Why here: devices/ is the one folder the gateway, the dashboard and the simulator may all import
 * (the dashboard never imports gateway code), and this is the gateway's other public contract,
 * next to the wire format. Types only (`export type` / `interface`, no runtime code, imported with
 * `import type`): nothing of it reaches a device's bundle or the SDK.
 *
 * Times are ms since 1970 (UTC); `null` means "not known" or "not now", and is always sent rather
 * than leaving a field out.
 */
import type { DeviceTypeSpec } from '../types/spec.js';

// ─── Devices ──────────────────────────────────────────────────────────────────────────────────

/** Why a device is offline (README "Presence and heartbeats"). */
export type OfflineCause =
  | 'closed' // the device closed the connection
  | 'timeout' // silent past the idle timeout
  | 'connection_lost' // the connection dropped without a close handshake
  | 'replaced' // the same id connected again and took over
  | 'kicked' // closed by the gateway for bad input
  | 'slow_consumer' // could not keep up with what the gateway sent
  | 'shutdown'; // the gateway stopped

/** A channel's last reading; booleans are sent as true/false. */
export interface LastValue {
  value: number | boolean;
  time: number;
}

export interface DeviceCounters {
  connections: number;
  frames: number;
  readings: number;
  duplicates: number;
  gaps: number;
  errors: number;
}

/**
 * One device: an item of `GET /api/devices`, the body of `GET /api/devices/{id}`, and an item of
 * the live `fleet` stream (the same fields in all three).
 */
export interface DeviceSummary {
  id: string;
  online: boolean;
  lastSeen: number | null;
  /** Names the device's channel schema (`GET /api/device-types`). */
  type: string | null;
  /** From the registry. */
  name: string | null;
  /** Key/value labels from the registry (e.g. `{ "site": "north" }`); `{}` when none. */
  labels: Record<string, string>;
  /** An operator disabled it: it is refused at connect (DEVICE_DISABLED) until enabled. */
  disabled: boolean;
  /** How it is connected now; null when offline. */
  transport: 'ws' | 'mqtt' | null;
  /** In a cluster: the gateway instance holding the connection (null for a bridged device). */
  instance: string | null;
  connectedAt: number | null;
  disconnectedAt: number | null;
  /** Null while online. */
  offlineCause: OfflineCause | null;
  offlineDetail: string | null;
  /** The device's current seq epoch. */
  epoch: number | null;
  /** Highest contiguous seq of `epoch` stored durably (what acks report); null before any. */
  ackedSeq: number | null;
  counters: DeviceCounters;
  /** The code of the last error the device caused (e.g. FRAME_TRUNCATED). */
  lastError: string | null;
  /** Last value per channel id (as a string key). */
  last: Record<string, LastValue>;
}

/**
 * `GET /api/devices[?online=true|false][&limit=N[&cursor=C]]`, sorted by id. Without `limit`, every
 * device; with it, pages of N: pass `nextCursor` as `cursor` for the next one (null on the last).
 */
export interface DeviceList {
  devices: DeviceSummary[];
  /** With limit or cursor: devices matching the filter, over all pages. */
  total?: number;
  /** With limit or cursor: the cursor of the next page, null when this is the last. */
  nextCursor?: string | null;
}

// ─── Device management (README "Managing devices") ────────────────────────────────────────────

/** `POST /api/devices`: a new device; answered 201 with a DeviceTokenAnswer (the token shown once). */
export interface NewDeviceRequest {
  id: string;
  type?: string;
  name?: string;
  labels?: Record<string, string>;
}

/** `PATCH /api/devices/{id}`: what is given changes (`null` clears type or name; labels replace the set). */
export interface DevicePatch {
  type?: string | null;
  name?: string | null;
  labels?: Record<string, string>;
}

/** `POST /api/devices/{id}/token` body: how long the old token keeps working (default 3600, at most 604800; 0: not at all). */
export interface TokenRotation {
  graceSeconds?: number;
}

/** The answer of `POST /api/devices` and `POST /api/devices/{id}/token`: the only time the token is shown. */
export interface DeviceTokenAnswer {
  device: DeviceSummary;
  /** 64 lowercase hex digits (32 random bytes); the gateway keeps only its hash. */
  token: string;
  /** Until when (ms since 1970) the token before this one still works; null when none does. */
  previousTokenValidUntil: number | null;
}

/** `DELETE /api/devices/{id}[?history=true]` */
export interface DeviceDeleted {
  id: string;
  deleted: true;
  /** Whether its stored history was deleted too. */
  history: boolean;
}

/** `GET /api/device-types` */
export interface DeviceTypeList {
  types: readonly DeviceTypeSpec[];
}

// ─── History ──────────────────────────────────────────────────────────────────────────────────

/**
 * One time bucket of history; a raw point is a bucket with count 1. `t` is the bucket start.
 * Buckets are `width = ceil((to - from + 1) / points)` ms wide and start at `from + k * width`;
 * empty buckets are left out. A bool reads as 1 (true) or 0 (false), so a bucket's mean is the
 * fraction of true readings.
 */
export interface HistoryBucket {
  t: number;
  mean: number;
  min: number;
  max: number;
  count: number;
}

/** `GET /api/devices/{id}/history?channel=&from=&to=&points=` */
export interface HistoryAnswer {
  device: string;
  channel: number;
  from: number;
  to: number;
  points: HistoryBucket[];
}

// ─── Commands ─────────────────────────────────────────────────────────────────────────────────

/** queued → sent → delivered → acked | failed, or expired / timed_out. */
export type CommandState = 'queued' | 'sent' | 'delivered' | 'acked' | 'failed' | 'expired' | 'timed_out';

export interface CommandTransition {
  state: CommandState;
  at: number;
  /** Why, when it is not obvious (e.g. "requeued: device disconnected before delivery"). */
  note?: string;
}

/**
 * A command and its lifecycle: `POST /api/devices/{id}/commands` (201, or 200 for a repeated
 * idempotency key), `GET /api/commands/{id}`, and the live `commands` stream.
 */
export interface CommandRecord {
  id: string;
  deviceId: string;
  name: string;
  /** The arguments as given (any JSON value), sent to the device as JSON text. */
  args: unknown;
  state: CommandState;
  createdAt: number;
  /** Delivery must happen before this (createdAt + ttlMs), else `expired`. */
  expiresAt: number;
  /** A result must come within this many ms of sending, else `timed_out`. */
  timeoutMs: number;
  idempotencyKey?: string;
  /** When the command was last written to the device (the timeout counts from here). */
  sentAt?: number;
  /** The device's result (acked) as parsed JSON, or its raw text when it is not JSON. */
  result?: unknown;
  /** Why it failed, expired or timed out. */
  error?: string;
  history: CommandTransition[];
  /** In a cluster: the instance that accepted the command and drives its lifecycle. */
  owner?: string;
}

/** The body of `POST /api/devices/{id}/commands`. */
export interface CommandRequest {
  name: string;
  args?: unknown;
  /** How long it may wait for an offline device (ms). */
  ttlMs?: number;
  /** How long a result may take once sent (ms). */
  timeoutMs?: number;
  /** A repeated key answers the first command instead of creating another. */
  idempotencyKey?: string;
}

/** `GET /api/devices/{id}/commands?limit=` */
export interface CommandList {
  commands: CommandRecord[];
}

// ─── Gateway health and counters ──────────────────────────────────────────────────────────────

/** `GET /healthz`: which process answered (with `--workers` each connection may reach another). */
export interface HealthAnswer {
  status: 'ok';
  pid: number;
  /** Null when not clustered. */
  instance: string | null;
}

/** `GET /readyz` (200 when ready, else 503). */
export interface ReadyAnswer {
  status: 'ready' | 'not ready';
  /** listening, broker, storage (and cluster): "ok" or what is wrong. */
  checks: Record<string, string>;
}

/** POST /api/session (201): the session the cookie now carries. */
export interface SessionCreated {
  session: { since: number; expiresAt: number; idleSeconds: number; maxSeconds: number };
}

/** GET /api/session: how this request was let in. */
export type SessionAnswer = { via: 'session'; since: number; idleSeconds: number } | { via: 'token' };

/** DELETE /api/session: whether a session was ended (the cookie is cleared either way). */
export interface LogoutAnswer {
  loggedOut: boolean;
}

/** POST /api/login-codes (201): a one-time login code and the dashboard link that carries it. */
export interface LoginCodeAnswer {
  code: string;
  url: string;
  expiresAt: number;
}

/** Every error answer of the HTTP API and of refused upgrades, with the matching status. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

/**
 * 202 answer of `POST /api/devices/{id}/telemetry` (JSON telemetry), sent once the readings are as
 * safe as an ack makes them: messages taken as new, and messages with a seq taken before (not stored again).
 */
export interface JsonTelemetryAnswer {
  accepted: number;
  duplicates: number;
}

/** What /readyz, /metrics and the dashboard's gateway panel show about storage. */
export interface StorageHealth {
  /**
   * ok: nothing waits beyond the current batch. degraded: the database fails or is slow, or a spill
   * is being drained; nothing is lost. down: the database fails and the spill file cannot take more
   * (full or failing): new readings can only wait in memory, and once that is full devices' frames
   * are refused (STORAGE_FULL) until the database or the spill takes data again.
   */
  status: 'ok' | 'degraded' | 'down';
  /** One human sentence on what is going on when not ok. */
  detail?: string;
  /** Points in memory waiting for the database (including the batch being filled). */
  buffered: number;
  /** Bytes of spill files on disk. */
  spilledBytes: number;
  /** Points in the spill files not yet in the database. */
  spilledPoints: number;
  /** Points the database accepted (a point re-sent after an outage counts again). */
  written: number;
  /** Write requests sent again after a retryable failure. */
  retried: number;
  /** Writes (frames) refused by admit() because memory and the spill were full: never taken, never acked; their devices resend them. */
  refused: number;
  /**
   * Points this process gave up on: a spill record whose checksum failed (acked when it was
   * spilled: truly lost), or points still in memory when close() found neither the database nor the
   * spill taking them (never acked: their devices resend them after the restart).
   */
  lost: number;
  /** Points the database refused for good (non-retryable: type conflict, bad data). */
  rejected: number;
  /** The last error, with its code: `STORAGE_UNREACHABLE: connect ECONNREFUSED 127.0.0.1:8086`. */
  lastError?: string;
}

/** The gateway's counters: the live `stats` stream, once a second. */
export interface GatewayStats {
  devicesOnline: number;
  devicesKnown: number;
  framesPerSec: number;
  readingsPerSec: number;
  frames: number;
  readings: number;
  duplicates: number;
  gaps: number;
  errors: number;
  /** Frame errors by code (FRAME_TRUNCATED, …). */
  errorsByCode: Record<string, number>;
  /** Commands this instance drives, by state. */
  commands: Record<CommandState, number>;
  uptimeSec: number;
  /** /live and SSE clients. */
  liveClients: number;
  /** Live messages not sent to a client that was over its budget. */
  liveDropped: number;
  /** `kind`: memory or influxdb. */
  storage: StorageHealth & { kind: string };
}

// ─── The live stream (gateway/LIVE.md) ────────────────────────────────────────────────────────

/** Client → gateway on /live. */
export interface SubscribeRequest {
  op: 'subscribe';
  /** fleet, stats, commands, types, device:<id> */
  streams: string[];
  /** Per device stream: the last seq the client applied; the gateway replays what follows. */
  resume?: Record<string, number>;
  /** The hello's bootId the resume seqs came from. */
  bootId?: string;
}

export interface UnsubscribeRequest {
  op: 'unsubscribe';
  streams: string[];
}

export type LiveRequest = SubscribeRequest | UnsubscribeRequest;

/** A reading in a device message: [time ms, value]. */
export type LivePoint = [number, number | boolean];

/** The first message on /live. `bootId` changes with every gateway process (see resume). */
export interface HelloMessage {
  type: 'hello';
  serverTime: number;
  bootId: string;
  flushMs: number;
  budgetBytes: number;
}

/** `full`: a snapshot of every device (on subscribe, after `missed`); else the devices that changed. */
export interface FleetMessage {
  type: 'fleet';
  full: boolean;
  devices: DeviceSummary[];
  /** In a delta: ids of devices deleted since (`DELETE /api/devices/{id}`); apply before `devices`. */
  removed?: string[];
}

export interface StatsMessage {
  type: 'stats';
  stats: GatewayStats;
}

/**
 * One `device:<id>` message (also the SSE `device` event's data): points per channel id, coalesced
 * over one flush; `seq` grows by one per message of the stream.
 */
export interface DeviceMessage {
  type: 'device';
  id: string;
  seq: number;
  points: Record<string, LivePoint[]>;
  /** Min and max per channel only: the device sent more than --live-max-points in the flush. */
  downsampled: boolean;
}

/**
 * The `types` stream: the device types in force (what `GET /api/device-types` answers), on
 * subscribe and again after every reload of the types file.
 */
export interface TypesMessage {
  type: 'types';
  types: readonly DeviceTypeSpec[];
}

export interface CommandMessage {
  type: 'command';
  command: CommandRecord;
}

/** After a client caught up: how many messages it did not get, and from which streams. */
export interface MissedMessage {
  type: 'missed';
  count: number;
  streams: string[];
}

/** The answer to a subscribe with `resume` (and the SSE `resume` event). */
export interface ResumeMessage {
  type: 'resume';
  stream: string;
  from: number;
  status: 'ok' | 'too_old';
}

/** A bad client message (BAD_MESSAGE, UNKNOWN_STREAM); the connection stays open. */
export interface LiveErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

/** Gateway → client on /live. */
export type LiveMessage =
  | HelloMessage
  | FleetMessage
  | StatsMessage
  | DeviceMessage
  | CommandMessage
  | TypesMessage
  | AlarmMessage
  | MissedMessage
  | ResumeMessage
  | LiveErrorMessage;

/** The SSE `missed` event's data: an SSE client follows device streams only, so no stream list. */
export type SseMissedMessage = Omit<MissedMessage, 'streams'>;

// ─── Alarms ───────────────────────────────────────────────────────────────────────────────────

export type AlarmSeverity = 'critical' | 'major' | 'minor' | 'warning';
export type AlarmState = 'active' | 'acknowledged' | 'cleared';

/**
 * One rule. `above`/`below`: the channel's value crosses `threshold` (clears once back past
 * `threshold ∓ hysteresis`), for at least `forMs` when given ("above 8 °C for 5 min").
 * `outside`: the value leaves [min, max] for at least `forMs`. `rate`: the value changes faster than
 * `perSecond` (absolute units per second) between two readings. `silent`: no reading from the device
 * for `forMs` (also raised while it is offline). `true`: a bool channel becomes true (clears when false).
 */
export type AlarmCondition =
  | { kind: 'above' | 'below'; channel: number; threshold: number; hysteresis?: number; forMs?: number }
  | { kind: 'outside'; channel: number; min: number; max: number; hysteresis?: number; forMs?: number }
  | { kind: 'rate'; channel: number; perSecond: number }
  | { kind: 'silent'; forMs: number }
  | { kind: 'true'; channel: number };

/** `GET /api/alarm-rules` items; `POST /api/alarm-rules` takes one without `id`/`source`. */
export interface AlarmRule {
  /** Stable: `type:<type>:<name>` for rules from the types file, else given by the API. */
  id: string;
  name: string;
  severity: AlarmSeverity;
  /** Exactly one of `deviceType` / `deviceId` says which devices the rule watches. */
  deviceType?: string;
  deviceId?: string;
  condition: AlarmCondition;
  /** Webhook URL for this rule's transitions (besides the global `--alarm-webhook`). */
  webhook?: string;
  /** Where it came from: the device types file, or the API (kept in the data folder). */
  source: 'types' | 'api';
}

export interface AlarmTransition {
  state: AlarmState;
  at: number;
  /** `operator` for acknowledge and clear by hand, `rule` when the condition cleared it. */
  by: 'rule' | 'operator';
  note?: string;
}

/** One alarm: at most one not cleared per (rule, device). */
export interface Alarm {
  id: string;
  ruleId: string;
  ruleName: string;
  deviceId: string;
  severity: AlarmSeverity;
  state: AlarmState;
  /** Channel id the rule watches (null for `silent`). */
  channel: number | null;
  /** The reading that raised it (null for `silent`). */
  value: number | boolean | null;
  /** Device time of that reading, or the gateway time for `silent`. */
  raisedAt: number;
  /** Human line: "temperature 9.2 °C above 8 for 5 min". */
  message: string;
  /** Every transition, oldest first (the first is `active`). */
  transitions: AlarmTransition[];
}

/** `GET /api/alarm-rules`: the types' rules (read-only), then the API's. */
export interface AlarmRuleList {
  rules: AlarmRule[];
}

/** `GET /api/alarms[?state=active,acknowledged][&severity=critical,major][&device=ID][&limit=N]`, newest first. */
export interface AlarmList {
  alarms: Alarm[];
}

/** `POST /api/alarms/{id}/acknowledge` and `/clear` bodies; both answer the updated `Alarm`. */
export interface AlarmActionRequest {
  note?: string;
}

/**
 * The `alarms` live stream: on subscribe every alarm not cleared (`full: true`), then each alarm
 * as it changes (raised, acknowledged, cleared). Also the SSE `alarm` event's data, and the body
 * POSTed to webhooks and published on MQTT `alarms/{deviceId}` (QoS 1).
 */
export interface AlarmMessage {
  type: 'alarm';
  full: boolean;
  alarms: Alarm[];
}
