/**
 * POST /api/devices/{id}/commands, GET /api/devices/{id}/commands, GET /api/commands/{id}
 * (the operator check happened before these run).
 */
import type { CommandList } from '../../devices/api/json.js';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../../devices/device-id.js';
import { ApiError } from '../errors.js';
import { FileWriteError } from '../files/file-error.js';
import { readJson, requireGet, sendJson, type RouteHandler } from '../http-api.js';
import { onlyParams } from '../query-params.js';
import { CommandError, type CommandErrorCode } from './command.js';
import type { CommandService, NewCommand } from './commands.js';

/** The HTTP status of each refusal of the command service. */
const STATUS: Record<CommandErrorCode, number> = {
  BAD_COMMAND: 400,
  UNKNOWN_COMMAND: 400,
  BAD_COMMAND_ARGS: 400,
  DEVICE_NOT_FOUND: 404,
  COMMAND_TOO_LARGE: 413,
  COMMAND_QUEUE_FULL: 429,
};

/** The service's refusals as HTTP answers; codes are the service's, only the status is the HTTP layer's. */
function create(commands: CommandService, deviceId: string, body: NewCommand): ReturnType<CommandService['create']> {
  try {
    return commands.create(deviceId, body);
  } catch (err) {
    if (err instanceof CommandError) throw new ApiError(STATUS[err.code], err.code, err.message);
    if (err instanceof FileWriteError) {
      throw new ApiError(err.noSpace ? 507 : 503, 'COMMAND_NOT_PERSISTED', `the command was not queued: ${err.message}. Retry once the data disk takes writes again (GET /readyz says when)`);
    }
    throw err;
  }
}

export function commandRoutes(commands: CommandService, maxArgsBytes: number): RouteHandler {
  return async (req, reply, s) => {
    if (s[0] !== 'api') return false;
    if (s.length === 4 && s[1] === 'devices' && s[3] === 'commands') {
      if (!DEVICE_ID_PATTERN.test(s[2]!)) throw new ApiError(400, 'BAD_DEVICE_ID', `"${s[2]!.slice(0, 200)}" is not a device id: ids are ${DEVICE_ID_RULE}`);
      if (req.method === 'POST') {
        // The body holds args plus a little: allow room beyond the args limit itself.
        const body = (await readJson(reply, maxArgsBytes + 4096)) as NewCommand;
        const { command, created } = create(commands, s[2]!, body);
        sendJson(reply, created ? 201 : 200, command);
        return true;
      }
      requireGet(req, s);
      onlyParams(req.query, ['limit'], `${req.path} takes limit`);
      const raw = req.query.get('limit');
      const limit = raw === null ? 50 : Number(raw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ApiError(400, 'BAD_QUERY', 'limit must be a whole number from 1 to 1000');
      sendJson(reply, 200, { commands: commands.forDevice(s[2]!, limit) } satisfies CommandList);
      return true;
    }
    if (s.length === 3 && s[1] === 'commands') {
      requireGet(req, s);
      const c = commands.get(s[2]!);
      if (!c) throw new ApiError(404, 'COMMAND_NOT_FOUND', `no command "${s[2]}" (finished commands are kept only for the newest per device)`);
      sendJson(reply, 200, c);
      return true;
    }
    return false;
  };
}
