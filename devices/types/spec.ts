/**
 * What a device type declares (README "Device types"): its channels (name, unit, value type,
 * plausible range) and the commands its devices accept, with an argument schema. The shapes of a
 * types file's entries and of `GET /api/device-types`. Types only: the dashboard imports them.
 */
import type { AlarmRule } from '../api/json.js';
import type { ValueTypeName } from '../codec/types.js';
import type { ArgsSchema } from './args.js';

export type { ArgSchema, ArgsSchema, ArgType } from './args.js';

export interface ChannelSpec {
  /** The channel byte of a binary reading (0 to 255). */
  id: number;
  name: string;
  unit: string;
  type: ValueTypeName;
  /** Plausible range, for the simulator (the dashboard's chart axes follow the readings). */
  min?: number;
  max?: number;
}

/** A command a device of the type accepts (the dashboard offers it as a chip). */
export interface CommandSpec {
  name: string;
  hint: string;
  /** Example arguments, valid for the device as they are (the dashboard's template). */
  example: unknown;
  /** What the arguments must be (null: none); the gateway refuses others with BAD_COMMAND_ARGS. */
  schema: ArgsSchema | null;
}

export interface DeviceTypeSpec {
  type: string;
  name: string;
  channels: ChannelSpec[];
  /**
   * What the type's devices accept. When listed, the gateway refuses any other command for them
   * (UNKNOWN_COMMAND); when left out, it sends any command and lets the device answer.
   */
  commands?: CommandSpec[];
  /**
   * Alarm rules every device of the type runs (README "Alarms"); the gateway checks each one when
   * it loads the file (a bad rule is TYPES_INVALID) and names it `type:<type>:<name>`.
   */
  alarms?: AlarmRuleSpec[];
}

/** An alarm rule as a types file declares it: the type is the one it sits in. */
export type AlarmRuleSpec = Pick<AlarmRule, 'name' | 'severity' | 'condition'> & Partial<Pick<AlarmRule, 'webhook'>>;
