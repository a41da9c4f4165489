/**
 * The shapes the gateway sends: HTTP API bodies and /live messages. They are the gateway's own
 * contract (devices/api/json.ts), re-exported here for the dashboard's modules; only what the
 * dashboard derives from them is defined here.
 */
import type { CommandState, HistoryBucket } from '../../devices/api/json.js';

export type {
  Alarm,
  AlarmActionRequest,
  AlarmList,
  AlarmMessage,
  AlarmSeverity,
  AlarmState,
  AlarmTransition,
  CommandList,
  CommandRecord,
  CommandRequest,
  CommandState,
  DeviceCounters,
  DeviceDeleted,
  DeviceList,
  DevicePatch,
  DeviceTokenAnswer,
  NewDeviceRequest,
  DeviceMessage,
  DeviceSummary,
  GatewayStats,
  HistoryAnswer,
  LastValue,
  LiveMessage,
  LiveRequest,
  OfflineCause,
} from '../../devices/api/json.js';

/** The device-type schema, shared with the gateway and the simulator. */
export type { ArgsSchema, ChannelSpec, CommandSpec, DeviceTypeSpec } from '../../devices/types/spec.js';

/** A bucket of GET /api/devices/{id}/history. */
export type HistoryPoint = HistoryBucket;

export const FINAL_COMMAND_STATES: ReadonlySet<CommandState> = new Set(['acked', 'failed', 'expired', 'timed_out']);
