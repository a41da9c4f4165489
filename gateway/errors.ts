/**
 * Gateway failures as named classes with stable codes a user can search for (the README lists them).
 */
import type { ApiErrorBody } from '../devices/api/json.js';

export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A setting that is missing, malformed or out of range. The message names the flag and env var. */
export class ConfigError extends GatewayError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

/** An HTTP API failure: carries the status and the JSON error body's code. */
export class ApiError extends GatewayError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }

  toJSON(): ApiErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}
