/** A command's record and its lifecycle: queued → sent → delivered → acked | failed, or expired / timed_out. */
import type { CommandRecord, CommandState, CommandTransition } from '../../devices/api/json.js';

/** The JSON shapes are the API's (devices/api/json.ts). */
export type { CommandRecord, CommandState, CommandTransition };

export const FINAL_STATES: ReadonlySet<CommandState> = new Set(['acked', 'failed', 'expired', 'timed_out']);

export function isFinal(c: CommandRecord): boolean {
  return FINAL_STATES.has(c.state);
}
