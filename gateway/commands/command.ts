/** A command's record and its lifecycle: queued → sent → delivered → acked | failed, or expired / timed_out. */
import type { CommandRecord, CommandState, CommandTransition } from '../../devices/api/json.js';
import { GatewayError } from '../errors.js';

/** The JSON shapes are the API's (devices/api/json.ts). */
export type { CommandRecord, CommandState, CommandTransition };

export const FINAL_STATES: ReadonlySet<CommandState> = new Set(['acked', 'failed', 'expired', 'timed_out']);

export function isFinal(c: CommandRecord): boolean {
  return FINAL_STATES.has(c.state);
}

/** Why the command service refused a request. The HTTP layer (routes.ts) maps each code to a status. */
export type CommandErrorCode = 'DEVICE_NOT_FOUND' | 'BAD_COMMAND' | 'UNKNOWN_COMMAND' | 'BAD_COMMAND_ARGS' | 'COMMAND_TOO_LARGE' | 'COMMAND_QUEUE_FULL';

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
