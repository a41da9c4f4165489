/** Refusals of the alarm API, with stable codes (README "Alarms"); routes.ts maps them to HTTP statuses. */
import { GatewayError } from '../errors.js';

export type AlarmErrorCode =
  | 'ALARM_NOT_FOUND'
  | 'ALARM_ALREADY_ACKNOWLEDGED'
  | 'ALARM_ALREADY_CLEARED'
  | 'ALARM_RULE_NOT_FOUND'
  | 'ALARM_RULE_EXISTS'
  | 'ALARM_RULE_READ_ONLY';

export class AlarmError extends GatewayError {
  override name = 'AlarmError';
  constructor(
    override readonly code: AlarmErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}
