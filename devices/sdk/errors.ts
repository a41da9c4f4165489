import type { ErrorCode } from '../codec/errors.js';

/**
 * Codes a DeviceError carries. The SDK's own failures:
 * - UNAUTHORIZED: the gateway refused the device: HTTP 401 over WebSocket (`status` 401); over MQTT a
 *   CONNACK 4 or 5 (MQTT 5: 0x86, 0x87; `closeCode` 4411) or a refused SUBACK (`closeCode` 4410).
 *   The client stops; a wrong token does not fix itself.
 * - BUFFER_FULL: send() with whenFull 'reject' while maxUnackedFrames frames wait for an ack.
 * - CONNECT_TIMEOUT: no open connection within connectTimeoutMs (the client retries unless reconnect is false).
 * - CONNECT_FAILED: the connection attempt failed (refused, DNS, HTTP 503, ...); `status` has the HTTP status if any.
 * - CONNECTION_REJECTED: the gateway closed with a code in 4400–4499; the client does not reconnect.
 * - CLOSE_TIMEOUT: close() ends with frames not acked: closeTimeoutMs passed, or no connection could
 *   deliver them (never connected, or stopped). stats.unacked says how many.
 * - CLOSED: the client was closed (send() after close(), or connect() interrupted by close()).
 * Plus every gateway code (codec ERROR_CODES, e.g. FRAME_TOO_LARGE) received in an error frame or
 * met while decoding a frame from the gateway, and ERROR_<n> for an error number this SDK does not know.
 */
export type DeviceErrorCode =
  | 'UNAUTHORIZED'
  | 'BUFFER_FULL'
  | 'CONNECT_TIMEOUT'
  | 'CONNECT_FAILED'
  | 'CONNECTION_REJECTED'
  | 'CLOSE_TIMEOUT'
  | 'CLOSED'
  | ErrorCode
  | `ERROR_${number}`;

export interface DeviceErrorDetails {
  cause?: unknown;
  /** HTTP status of a refused WebSocket upgrade; unset when there was none (MQTT). */
  status?: number;
  /** WebSocket close code that ended the connection (MQTT: MQTT_CLOSE_CODES or the error frame's WebSocket code). */
  closeCode?: number;
}

/** Every failure the SDK reports, thrown or emitted as 'error'. `code` is stable; messages may change. */
export class DeviceError extends Error {
  override readonly name = 'DeviceError';
  readonly status: number | undefined;
  readonly closeCode: number | undefined;

  constructor(
    readonly code: DeviceErrorCode,
    message: string,
    details: DeviceErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.closeCode = details.closeCode;
  }
}
