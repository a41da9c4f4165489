/**
 * The seam between DeviceClient and the network. A transport carries whole encoded frames both
 * ways and reports how its connection ended; everything else (batching, outbox, acks, resends,
 * backoff, timeouts) lives in the client, so a WebSocket and an MQTT transport behave the same.
 *
 * An MQTT transport maps: open = CONNACK accepted; send = publish to devices/{id}/telemetry or
 * devices/{id}/results by the frame type (byte 1 of the header); message = a publish on the
 * device's downlink topic; unauthorized = CONNACK "bad username or password" / "not authorized".
 */

/** How a connection (or a connection attempt) ended. */
export interface TransportCloseInfo {
  /** WebSocket close code, or 1006 when the connection failed or dropped without a close frame. */
  code: number;
  reason: string;
  /** HTTP status when the server answered the upgrade with something else than 101 (401, 503, ...). */
  status?: number;
  /** The server refused the device's credentials. The client then stops: a wrong token does not fix itself. */
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
}
