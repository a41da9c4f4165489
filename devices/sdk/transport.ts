/**
 * The seam between DeviceClient and the network. A transport carries whole encoded frames both
 * ways and reports how its connection ended; everything else (batching, outbox, acks, resends,
 * commands, backoff, timeouts) lives in the client, so a WebSocket and an MQTT transport behave the same.
 *
 * A WebSocket transport maps: open = the upgrade succeeded; unauthorized = HTTP 401 (with `status`).
 * An MQTT transport maps (mqtt-transport.ts): open = CONNACK accepted AND the SUBACK granted
 * devices/{id}/commands (before that the gateway's acks would be lost); send = publish to
 * devices/{id}/telemetry or devices/{id}/results by the frame type (byte 1 of the header);
 * message = a publish on devices/{id}/commands; unauthorized = CONNACK "bad username or password" /
 * "not authorized" (3.1.1: 4, 5; MQTT 5: 0x86, 0x87; close code 4411) or a refused SUBACK (close
 * code 4410), with no `status`.
 */

/** How a connection (or a connection attempt) ended. */
export interface TransportCloseInfo {
  /** WebSocket close code (MQTT: see MQTT_CLOSE_CODES), or 1006 when the connection failed or dropped without a close frame. */
  code: number;
  reason: string;
  /** HTTP status when the server answered the upgrade with something else than 101 (401, 503, ...). */
  status?: number;
  /** The server refused the device's credentials (HTTP 401; MQTT CONNACK 4/5 or SUBACK). The client then stops: a wrong token does not fix itself. */
  unauthorized: boolean;
  /** The underlying error, if the connection failed with one. */
  error?: Error;
}

/** Callbacks a transport calls. `open` at most once, then any number of `message`, then `close` exactly once. */
export interface TransportHandlers {
  open(): void;
  /** One whole frame from the gateway. The bytes may be reused after the call returns: copy to keep. */
  message(frame: Uint8Array): void;
  close(info: TransportCloseInfo): void;
}

/** One connection. The client never reuses a transport: each (re)connect makes a new one. */
export interface Transport {
  /** Writes one frame; only called between `open` and `close`. Must not modify the bytes. */
  send(frame: Uint8Array): void;
  /** Closes gracefully (aborts the attempt if not yet open); `close` follows. */
  close(code: number, reason: string): void;
  /** Drops the connection at once; `close` may still follow and is ignored by then. */
  destroy(): void;
}

/** Starts connecting at once and reports through `handlers`. Built by e.g. wsTransport({ url, deviceId, token }). */
export type TransportFactory = (handlers: TransportHandlers) => Transport;

/** What every transport needs to reach a gateway as one device. */
export interface TransportTarget {
  url: string;
  deviceId: string;
  /** Sent only where the protocol keeps it out of URLs and logs (WS: Authorization header). */
  token: string;
  /** CA certificate(s) to trust for TLS (wss://, mqtts://). */
  ca?: string | Buffer | undefined;
}
