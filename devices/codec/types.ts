/**
 * Frame types and constants of wire format v1. The byte-level layout is in devices/PROTOCOL.md;
 * this file and the spec change together.
 */

export const PROTOCOL_VERSION = 1;
/** version u8, type u8, flags u8, reserved u8, epoch u32, seq u32, timestamp f64 */
export const HEADER_BYTES = 20;
/** Longest command id, command name or error text the format carries, in bytes. */
export const MAX_ID_BYTES = 64;
export const MAX_NAME_BYTES = 64;
/** Largest frame a device can send in v1: a telemetry frame of 65535 f64 readings with offsets (22 + 65535 × 14). */
export const MAX_DEVICE_FRAME_BYTES = 917_512;
/** Largest timestamp or expiry the format accepts: 9999-12-31T23:59:59.999Z in ms since the Unix epoch. */
export const MAX_TIMESTAMP = 253402300799999;

/** Types below 0x80 travel device → gateway, types from 0x80 up travel gateway → device. */
export const FrameType = {
  Telemetry: 0x01,
  CommandResult: 0x02,
  Ack: 0x81,
  Command: 0x82,
  Error: 0x83,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Header flag bits. Unknown bits are reserved: senders set them to 0, decoders ignore them. */
export const FrameFlag = {
  /** Telemetry: the device dropped every frame of this epoch before this one that was not acked. */
  GapBefore: 0x01,
  /**
   * Ack: acknowledges exactly the seqs firstSeq..seq (a u32 body), not everything up to seq. Sent by
   * gateways that see only part of a device's frames (several gateways on one MQTT shared subscription).
   */
  AckRange: 0x02,
} as const;

export const ValueType = {
  F32: 1,
  F64: 2,
  I32: 3,
  Bool: 4,
} as const;
export type ValueType = (typeof ValueType)[keyof typeof ValueType];
export type ValueTypeName = 'f32' | 'f64' | 'i32' | 'bool';
export const VALUE_TYPE_NAMES: Record<ValueType, ValueTypeName> = { 1: 'f32', 2: 'f64', 3: 'i32', 4: 'bool' };

/** Reading tag byte: low 4 bits value type, bit 7 set when an i32 time offset follows the value. */
export const TAG_TYPE_MASK = 0x0f;
export const TAG_HAS_OFFSET = 0x80;

export const CommandStatus = {
  Ok: 0,
  Failed: 1,
  /** The device does not know the command name or refuses its arguments. */
  Rejected: 2,
  /** Not a result: the device got the command and is working on it (the gateway's "delivered"). */
  Received: 3,
} as const;
export type CommandStatus = (typeof CommandStatus)[keyof typeof CommandStatus];

export interface FrameHeader {
  version: number;
  type: FrameType;
  flags: number;
  /** Per-boot random u32 chosen by the device, so the gateway tells a replay from a reboot. */
  epoch: number;
  /** Per-device sequence number, u32, wraps. */
  seq: number;
  /** Milliseconds since the Unix epoch (integral). */
  timestamp: number;
}

export interface Reading {
  channel: number;
  type: ValueTypeName;
  value: number | boolean;
  /** Milliseconds added to the frame timestamp for this reading; 0 when absent. */
  offsetMs: number;
}

export interface TelemetryFrame extends FrameHeader {
  type: typeof FrameType.Telemetry;
  readings: Reading[];
}

export interface CommandResultFrame extends FrameHeader {
  type: typeof FrameType.CommandResult;
  commandId: string;
  status: CommandStatus;
  /** UTF-8 JSON text: the result value, or for Failed/Rejected the reason as a JSON string. Empty when none. */
  payload: string;
}

export interface AckFrame extends FrameHeader {
  type: typeof FrameType.Ack;
  /** Present when flags has AckRange: the first seq of the acked range (the last is `seq`). */
  firstSeq?: number;
}

export interface CommandFrame extends FrameHeader {
  type: typeof FrameType.Command;
  commandId: string;
  name: string;
  /** ms since the Unix epoch after which the device must not act on it; 0 = no expiry. */
  expiresAt: number;
  /** UTF-8 JSON text of the arguments; empty when none. */
  args: string;
}

export interface ErrorFrame extends FrameHeader {
  type: typeof FrameType.Error;
  /** Numeric code from ERROR_CODES (errors.ts). */
  code: number;
  message: string;
}

export type Frame = TelemetryFrame | CommandResultFrame | AckFrame | CommandFrame | ErrorFrame;

/**
 * Readings decoded into reusable typed arrays: the gateway's hot path decodes every telemetry
 * frame into one of these without allocating per reading.
 */
export class TelemetryBatch {
  count = 0;
  readonly channels: Uint8Array;
  readonly types: Uint8Array;
  readonly values: Float64Array;
  readonly offsets: Int32Array;
  constructor(readonly capacity = 65535) {
    this.channels = new Uint8Array(capacity);
    this.types = new Uint8Array(capacity);
    this.values = new Float64Array(capacity);
    this.offsets = new Int32Array(capacity);
  }
}
