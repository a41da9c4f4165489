import { shouldReconnect } from '../codec/errors.js';
import { DeviceError } from './errors.js';
import type { Transport, TransportCloseInfo } from './transport.js';

/** One connection attempt and, if it opens, the connection. The client never reuses one. */
export interface Connection {
  transport: Transport | undefined;
  opened: boolean;
  /** An ack of our epoch arrived on it (the backoff starts over). */
  acked: boolean;
  timedOut: boolean;
  /** close() closed it on purpose. */
  closing: boolean;
  /** The last error frame the gateway sent on it. */
  gatewayError: DeviceError | undefined;
  connectTimer: unknown;
}

export function newConnection(): Connection {
  return { transport: undefined, opened: false, acked: false, timedOut: false, closing: false, gatewayError: undefined, connectTimer: undefined };
}

export interface Verdict {
  /** What to report as 'error', if anything. */
  error: DeviceError | undefined;
  /** Reconnecting will not help: refused credentials (HTTP 401, MQTT CONNACK 4/5 or SUBACK), a close code in 4400–4499, or close() asked for it. */
  final: boolean;
}

/** Why a connection ended, and whether trying again can help. */
export function judgeEnd(conn: Connection, info: TransportCloseInfo, connectTimeoutMs: number, deviceId: string): Verdict {
  if (conn.closing) return { error: undefined, final: true };
  if (info.unauthorized) {
    // WebSocket: the HTTP status of the refused upgrade. MQTT: no HTTP status, the transport's reason
    // (e.g. "CONNACK 5: Connection refused: Not authorized") and its close code (4410, 4411).
    const why = info.status !== undefined ? `HTTP ${info.status}` : `${info.reason || 'refused'}, close code ${info.code}`;
    const details = info.status !== undefined ? { status: info.status } : { closeCode: info.code };
    return { error: new DeviceError('UNAUTHORIZED', `the gateway did not authorize device "${deviceId}" (${why}); not reconnecting`, details), final: true };
  }
  if (conn.opened && !shouldReconnect(info.code)) {
    const reason = info.reason ? `: ${info.reason}` : '';
    const error = new DeviceError('CONNECTION_REJECTED', `the gateway closed the connection with ${info.code}${reason}; not reconnecting`, {
      closeCode: info.code,
      cause: conn.gatewayError,
    });
    return { error, final: true };
  }
  if (conn.timedOut) return { error: new DeviceError('CONNECT_TIMEOUT', `connection not open after ${connectTimeoutMs} ms`), final: false };
  if (!conn.opened) {
    const why = info.status !== undefined ? `HTTP ${info.status}` : (info.error?.message ?? info.reason);
    return { error: new DeviceError('CONNECT_FAILED', `could not connect: ${why}`, { status: info.status, cause: info.error }), final: false };
  }
  return { error: undefined, final: false };
}
