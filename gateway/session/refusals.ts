/**
 * The one table of refusal codes: every way the gateway turns a device away, at admission (the
 * WebSocket upgrade, the MQTT CONNECT) or during a session, with what each transport answers.
 * The README's tables are checked against it (test/unit/refusals.test.ts). The code itself is the
 * label of `gateway_refusals_total{code,transport}`, the `code` of the HTTP body, log lines and,
 * for codes with a `wire` number, the error frame (devices/PROTOCOL.md).
 */
import { CLOSE_CODES, ERROR_CODES, closeCodeFor, type ErrorCode } from '../../devices/codec/index.js';

/** MQTT 3.1.1 CONNACK return codes (3.2.2.3) the gateway sends. */
export const CONNACK = {
  UNACCEPTABLE_PROTOCOL_VERSION: 1,
  IDENTIFIER_REJECTED: 2,
  SERVER_UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;

export interface RefusalSpec {
  /** HTTP status of a refused WebSocket upgrade; absent when the refusal cannot happen there. */
  readonly http?: number;
  /** MQTT CONNACK return code; 'none' when MQTT 3.1.1 demands closing without one. Absent: not at CONNECT. */
  readonly connack?: number | 'none';
  /** WebSocket close code after the error frame, for refusals during a session. */
  readonly close?: number;
  /** The error frame's number on the wire (devices/PROTOCOL.md), for codes a device receives as a frame. */
  readonly wire?: number;
  /**
   * HTTP status of a refused `POST /api/devices/{id}/telemetry` (JSON telemetry) when it is not the
   * upgrade's status above (`http`) or 400.
   */
  readonly post?: number;
  /** True when the device sent bad input: counted against the device too (its `errors`, `lastError`). */
  readonly input?: boolean;
  /**
   * True when the message itself is bad, so no resend can cure it. A JSON message refused so over
   * MQTT is answered (error frame, then PUBACK) and the session stays: a client that keeps unacked
   * QoS 1 messages (MQTT.js, Paho, mosquitto with a session) would otherwise send it first after
   * every reconnect, and nothing behind it would ever be taken.
   */
  readonly final?: boolean;
  /** One line for the README. */
  readonly doc: string;
}

/** A frame-level code: its wire number and close code come from the codec. */
function frame(code: ErrorCode, doc: string, input = true): RefusalSpec {
  return { wire: ERROR_CODES[code], close: closeCodeFor(code), input, doc };
}

const ADMISSION = {
  DEVICE_ID_MISSING: { http: 400, connack: CONNACK.IDENTIFIER_REJECTED, doc: 'no device id: connect to `/device?id=<id>`; MQTT: an empty client id without a clean session [MQTT-3.1.3-8]' },
  BAD_DEVICE_ID: { http: 400, connack: CONNACK.IDENTIFIER_REJECTED, doc: 'the id is not 1–128 characters of `A-Z a-z 0-9 . _ : -`' },
  MQTT_CLIENT_ID_MISMATCH: { connack: CONNACK.IDENTIFIER_REJECTED, doc: 'MQTT: the client id is not the user name (both must be the device id)' },
  UNAUTHORIZED: { http: 401, connack: CONNACK.BAD_USERNAME_OR_PASSWORD, doc: 'no token, or a token not valid for this device id (the SDK stops retrying)' },
  DEVICE_DISABLED: { http: 403, connack: CONNACK.NOT_AUTHORIZED, close: 4410, doc: 'an operator disabled the device (`POST /api/devices/{id}/disable`): a connected one is closed with 4410 (MQTT: disconnected), every new connection refused until `…/enable`' },
  DEVICE_ALREADY_CONNECTED: { http: 409, connack: CONNACK.IDENTIFIER_REJECTED, doc: 'the id is connected already and the gateway runs with `--duplicate-id reject`; MQTT: also an `$operator` integration whose client id is a connected device\'s' },
  TOO_MANY_DEVICES: { http: 503, connack: CONNACK.SERVER_UNAVAILABLE, doc: '`--max-devices` devices are connected; retry with backoff' },
  SHUTTING_DOWN: { http: 503, connack: CONNACK.SERVER_UNAVAILABLE, wire: ERROR_CODES.SHUTTING_DOWN, close: CLOSE_CODES.SHUTTING_DOWN, doc: 'the gateway is stopping; retry with backoff (another instance may take the device)' },
  MQTT_CONNECT_ABANDONED: { connack: CONNACK.SERVER_UNAVAILABLE, doc: 'MQTT: the connection closed before its CONNECT was answered (the device gave up on it and retried)' },
} as const satisfies Record<string, RefusalSpec>;

/** Ends of a session the operator asked for (the management API), beside the device's own refusals. */
const MANAGEMENT = {
  DEVICE_DELETED: { close: 4411, doc: 'an operator deleted the device (`DELETE /api/devices/{id}`): its connection is closed with 4411 (MQTT: disconnected); its token no longer works' },
} as const satisfies Record<string, RefusalSpec>;

const MQTT_PROTOCOL = {
  MQTT_NOT_MQTT: { connack: 'none', input: true, doc: 'MQTT port: the bytes are not MQTT; the connection is closed' },
  MQTT_MALFORMED_PACKET: { connack: 'none', input: true, doc: 'MQTT: a packet the spec says must close the connection (bad UTF-8 or U+0000 in a string, a wildcard in or an empty PUBLISH topic name, will QoS 3, password without user name, …)' },
  MQTT_PACKET_TOO_LARGE: { connack: 'none', input: true, doc: 'MQTT: a packet over `--max-frame-bytes` + 256; the connection is closed' },
  MQTT_UNSOLICITED_PUBACK: { input: true, doc: 'MQTT: a PUBACK for nothing the gateway sent; the connection is closed' },
  MQTT_PROTOCOL_ERROR: { connack: 'none', input: true, doc: 'MQTT: the connection failed before its CONNECT completed (no CONNECT within 10 s, unsupported protocol level, a broken packet)' },
  MQTT_TLS_HANDSHAKE: { connack: 'none', doc: 'mqtts: the TLS handshake failed (untrusted certificate, plain MQTT on the TLS port)' },
  MQTT_FOREIGN_TOPIC: { connack: CONNACK.NOT_AUTHORIZED, input: true, doc: 'MQTT: a publish outside `devices/{id}/telemetry`, `…/telemetry/json` and `…/results` closes the connection; at CONNECT, a will outside `devices/{id}/`' },
  MQTT_UNSUPPORTED_PROTOCOL: { connack: CONNACK.UNACCEPTABLE_PROTOCOL_VERSION, input: true, doc: 'MQTT: a protocol level other than 3.1.1 (`MQTT`, 4) or 3.1 (`MQIsdp`, 3), MQTT 5 included: CONNACK 1, then the connection is closed' },
  MQTT_QOS2_UNRELEASED: { input: true, doc: 'MQTT: 1,000 QoS 2 PUBLISHes awaiting their PUBREL (the client never finishes the QoS 2 handshake); the connection is closed. Publish at QoS 1, or fix the client to answer each PUBREC with PUBREL' },
  MQTT_SUBSCRIBE_REFUSED: { input: true, doc: 'MQTT: a subscription other than `devices/{id}/commands` (for an `$operator` integration: `alarms/…`) gets SUBACK 0x80; the connection stays' },
} as const satisfies Record<string, RefusalSpec>;

/** Refusals of JSON telemetry over HTTP only (POST /api/devices/{id}/telemetry). */
const HTTP_TELEMETRY = {
  RATE_LIMITED: { post: 429, doc: 'HTTP telemetry: the device sent more requests than `--http-telemetry-rate` per second; wait the `Retry-After` seconds' },
  ACK_TIMEOUT: { post: 503, doc: 'JSON telemetry: the readings were taken but not confirmed safe (stored durably, cursor written) within 20 s (more than an InfluxDB write may take before it goes to the spill file): storage slow, the cursor file failing, or an earlier seq of the epoch missing. Resend (with `seq` the resend is a duplicate); MQTT: the connection closes without PUBACK' },
} as const satisfies Record<string, RefusalSpec>;

const SESSION: Record<Exclude<ErrorCode, 'SHUTTING_DOWN'>, RefusalSpec> = {
  FRAME_TRUNCATED: frame('FRAME_TRUNCATED', 'the frame ends before its header or a body field is complete'),
  FRAME_BAD_VERSION: frame('FRAME_BAD_VERSION', 'version byte is not 1'),
  FRAME_UNKNOWN_TYPE: frame('FRAME_UNKNOWN_TYPE', 'type byte is not one of the v1 types'),
  FRAME_COUNT_MISMATCH: frame('FRAME_COUNT_MISMATCH', 'the reading count does not match the bytes, or bytes follow the body'),
  FRAME_VALUE_OUT_OF_RANGE: frame('FRAME_VALUE_OUT_OF_RANGE', 'NaN, ±Infinity, a bool not 0/1, or an unknown result status'),
  FRAME_BAD_VALUE_TYPE: frame('FRAME_BAD_VALUE_TYPE', "a reading's tag has an unknown value type or reserved bits set"),
  FRAME_BAD_TIMESTAMP: frame('FRAME_BAD_TIMESTAMP', 'a timestamp is not whole milliseconds in 0 … 9999-12-31'),
  FRAME_BAD_STRING: frame('FRAME_BAD_STRING', 'a string over its maximum length or not valid UTF-8'),
  FRAME_WRONG_DIRECTION: frame('FRAME_WRONG_DIRECTION', 'a device sent a gateway → device frame type'),
  FRAME_TOO_LARGE: { ...frame('FRAME_TOO_LARGE', 'a frame over `--max-frame-bytes`; over 4× the limit a WebSocket is dropped at once (1006)'), post: 413, final: true },
  TOO_MANY_READINGS: { ...frame('TOO_MANY_READINGS', 'a frame with more than `--max-readings` readings'), post: 413, final: true },
  NOT_BINARY: frame('NOT_BINARY', 'a WebSocket text message; frames are binary messages'),
  REPLACED: frame('REPLACED', 'the same id connected again and took over (newest wins; shown as offline cause `replaced`, not counted)', false),
  SLOW_CONSUMER: frame('SLOW_CONSUMER', 'the device does not read what the gateway sends fast enough', false),
  STORAGE_FULL: { ...frame('STORAGE_FULL', 'storage cannot take more now (database away, memory and spill file full): the frame is not taken or acked; keep it, reconnect with backoff and resend', false), post: 503 },
  TIMESTAMP_OUT_OF_RANGE: { ...frame('TIMESTAMP_OUT_OF_RANGE', "a reading's time is older than storage keeps (the retention policy) or after 2262: drop that frame and set the device's clock"), final: true },
  JSON_MALFORMED: { ...frame('JSON_MALFORMED', 'JSON telemetry: not UTF-8 JSON, or not an object (or an array of objects); HTTP 400'), final: true },
  JSON_BAD_FIELD: { ...frame('JSON_BAD_FIELD', 'JSON telemetry: `ts`, `seq` or `epoch` is not a whole number in range (`ts` may be ISO 8601), `epoch` without `seq`, `values` not an object, or another key beside them; or a message with no readings (`{}`, an empty `values`, only `ts`/`seq`/`epoch`); HTTP 400'), final: true },
  JSON_BAD_VALUE: { ...frame('JSON_BAD_VALUE', "JSON telemetry: a value is not a finite number or a boolean, or does not fit its channel's type (a bool channel takes true/false, i32 whole numbers, f32 up to ±3.4e38); HTTP 400"), final: true },
  UNKNOWN_CHANNEL: { ...frame('UNKNOWN_CHANNEL', "JSON telemetry: a name that is not a channel of the device's type (GET /api/device-types), or the device has no type; HTTP 400"), final: true },
};

export const REFUSALS = { ...ADMISSION, ...MANAGEMENT, ...MQTT_PROTOCOL, ...HTTP_TELEMETRY, ...SESSION } as const satisfies Record<string, RefusalSpec>;

export type RefusalCode = keyof typeof REFUSALS;

/** What the table says of a code (its row, with every optional field). */
export function refusalSpec(code: RefusalCode): RefusalSpec {
  return REFUSALS[code];
}

/** Transports as refusal metrics and logs name them ('http': JSON telemetry POSTed to the API). */
export type SessionTransport = 'ws' | 'mqtt' | 'bridge' | 'http';

/** What a transport must answer for a refusal: the table row with the code and a message for people. */
export class Refusal {
  readonly spec: RefusalSpec;
  constructor(
    readonly code: RefusalCode,
    readonly message: string,
    /** Only the message was refused (answered, never stored); the session goes on. */
    readonly messageOnly = false,
  ) {
    this.spec = refusalSpec(code);
  }

  /** The HTTP status of this refusal on `POST /api/devices/{id}/telemetry`. */
  get postStatus(): number {
    return this.spec.post ?? this.spec.http ?? 400;
  }

  /** The JSON error body of a refused upgrade, as the HTTP API writes its errors. */
  body(): string {
    return JSON.stringify({ error: { code: this.code, message: this.message } });
  }
}

export function isRefusalCode(code: string): code is RefusalCode {
  return Object.hasOwn(REFUSALS, code);
}
