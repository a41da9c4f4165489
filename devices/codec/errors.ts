/**
 * Every error code a device can receive, with its number on the wire (error frames) and the
 * WebSocket close code the gateway uses after sending it. The README lists them; keep both in step.
 */

export const ERROR_CODES = {
  // Decoding: the bytes are not a valid v1 frame.
  FRAME_TRUNCATED: 1,
  FRAME_BAD_VERSION: 2,
  FRAME_UNKNOWN_TYPE: 3,
  FRAME_COUNT_MISMATCH: 4,
  FRAME_VALUE_OUT_OF_RANGE: 5,
  FRAME_BAD_VALUE_TYPE: 6,
  FRAME_BAD_TIMESTAMP: 7,
  FRAME_BAD_STRING: 8,
  FRAME_WRONG_DIRECTION: 9,
  // Gateway limits and policy.
  FRAME_TOO_LARGE: 100,
  TOO_MANY_READINGS: 101,
  NOT_BINARY: 102,
  REPLACED: 103,
  SLOW_CONSUMER: 104,
  SHUTTING_DOWN: 105,
  // Storage: the frame is fine but the gateway cannot keep it now (STORAGE_FULL) or ever (TIMESTAMP_OUT_OF_RANGE).
  STORAGE_FULL: 106,
  TIMESTAMP_OUT_OF_RANGE: 107,
  // JSON telemetry (devices/{id}/telemetry/json, POST /api/devices/{id}/telemetry): the message is refused as a whole.
  JSON_MALFORMED: 108,
  JSON_BAD_FIELD: 109,
  JSON_BAD_VALUE: 110,
  UNKNOWN_CHANNEL: 111,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type FrameErrorCode = Extract<ErrorCode, `FRAME_${string}`>;

const CODE_BY_NUMBER = new Map<number, ErrorCode>(
  (Object.entries(ERROR_CODES) as [ErrorCode, number][]).map(([name, n]) => [n, name]),
);

/** The code's name for a number received in an error frame, or undefined for an unknown one. */
export function errorCodeName(n: number): ErrorCode | undefined {
  return CODE_BY_NUMBER.get(n);
}

/**
 * WebSocket close codes. 4400–4499: the device sent something wrong or was replaced; reconnecting
 * unchanged will not help, so the SDK does not reconnect. 4500–4599: the gateway's condition;
 * reconnect with backoff. 1001: the gateway is going away; reconnect with backoff.
 */
export const CLOSE_CODES = {
  GOING_AWAY: 1001,
  BAD_FRAME: 4400,
  FRAME_TOO_LARGE: 4401,
  TOO_MANY_READINGS: 4402,
  NOT_BINARY: 4403,
  REPLACED: 4409,
  SLOW_CONSUMER: 4500,
  SHUTTING_DOWN: 4503,
  STORAGE_FULL: 4507,
  TIMESTAMP_OUT_OF_RANGE: 4508,
} as const;

export function closeCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'FRAME_TOO_LARGE':
      return CLOSE_CODES.FRAME_TOO_LARGE;
    case 'TOO_MANY_READINGS':
      return CLOSE_CODES.TOO_MANY_READINGS;
    case 'NOT_BINARY':
      return CLOSE_CODES.NOT_BINARY;
    case 'REPLACED':
      return CLOSE_CODES.REPLACED;
    case 'SLOW_CONSUMER':
      return CLOSE_CODES.SLOW_CONSUMER;
    case 'SHUTTING_DOWN':
      return CLOSE_CODES.SHUTTING_DOWN;
    case 'STORAGE_FULL':
      return CLOSE_CODES.STORAGE_FULL;
    case 'TIMESTAMP_OUT_OF_RANGE':
      return CLOSE_CODES.TIMESTAMP_OUT_OF_RANGE;
    default:
      return CLOSE_CODES.BAD_FRAME;
  }
}

/** True when a device closed with this code should reconnect (with backoff). */
export function shouldReconnect(closeCode: number): boolean {
  return !(closeCode >= 4400 && closeCode <= 4499);
}

/** A frame that could not be decoded. Returned, never thrown, by the decoder. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  readonly closeCode: number;
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    /** Byte offset at which decoding failed. */
    readonly offset = 0,
  ) {
    super(`${code}: ${message}`);
    this.closeCode = closeCodeFor(code);
  }
}
