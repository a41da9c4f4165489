/** A command's record and its lifecycle: queued → sent → delivered → acked | failed, or expired / timed_out. */
import { GatewayError } from '../errors.js';

export type CommandState = 'queued' | 'sent' | 'delivered' | 'acked' | 'failed' | 'expired' | 'timed_out';

export const FINAL_STATES: ReadonlySet<CommandState> = new Set(['acked', 'failed', 'expired', 'timed_out']);

export interface Transition {
  state: CommandState;
  /** ms since epoch */
  at: number;
  /** Why, when it is not obvious (e.g. "requeued: device disconnected before delivery"). */
  note?: string;
}

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
  history: Transition[];
  /** In a cluster: the instance that accepted the command and drives its lifecycle. */
  owner?: string;
}

export function isFinal(c: CommandRecord): boolean {
  return FINAL_STATES.has(c.state);
}

/** Why the command service refused a request. The HTTP layer (routes.ts) maps each code to a status. */
export type CommandErrorCode = 'DEVICE_NOT_FOUND' | 'BAD_COMMAND' | 'COMMAND_TOO_LARGE' | 'COMMAND_QUEUE_FULL';

/** A command the service will not take, with a stable code (the README lists them). */
export class CommandError extends GatewayError {
  override name = 'CommandError';
  constructor(
    override readonly code: CommandErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}
