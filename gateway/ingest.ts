/**
 * One ingest path for every transport: decode → dedupe → device state → storage → events. Frames are
 * handled synchronously, so a transport may pass bytes that are only valid during the call (uWS
 * message buffers are). Ingest knows nothing of acks, live views or the cluster: they subscribe to
 * its events (`onTelemetry`, `onIngested`, `onDuplicate`, `onResult`) where they live.
 */
import {
  decodeDeviceHeader,
  decodeFrame,
  decodeHeader,
  decodeTelemetryInto,
  FrameFlag,
  FrameType,
  HEADER_BYTES,
  TelemetryBatch,
  type CommandResultFrame,
  type ErrorCode,
  type FrameHeader,
} from '../devices/codec/index.js';
import { Verdict } from './dedupe.js';
import type { DeviceState } from './devices.js';
import type { Storage } from './storage/storage.js';

/** What the transport must do about a frame it could not take: send this error, then close. */
export interface IngestRefusal {
  code: ErrorCode;
  message: string;
  /** The refused telemetry frame, for the error frame's header (STORAGE_FULL, TIMESTAMP_OUT_OF_RANGE). */
  epoch?: number;
  seq?: number;
}

/**
 * Called for each new (not duplicate) telemetry frame taken from a device connected here, after
 * storage took it. `header` and `batch` are reused.
 */
export type TelemetryListener = (device: DeviceState, header: FrameHeader, batch: TelemetryBatch) => void;
/**
 * Called for each new telemetry frame taken from a device connected here, after the listeners above,
 * with its storage ticket and its bytes (valid during the call only; empty for a JSON message).
 * Not called for a JSON message without seq: nothing is acked for it.
 */
export type IngestedListener = (device: DeviceState, header: FrameHeader, ticket: number, bytes: Uint8Array) => void;
/** Called for a frame already taken (the device resent it). */
export type DuplicateListener = (device: DeviceState, header: FrameHeader) => void;
export type ResultListener = (device: DeviceState, result: CommandResultFrame) => void;

/** `Ingest.taken` after a frame or message that was a duplicate. */
export const DUPLICATE = -1;
const NO_BYTES = new Uint8Array(0);

export class IngestStats {
  frames = 0;
  readings = 0;
  duplicates = 0;
  errors = 0;
  readonly errorsByCode = new Map<string, number>();

  countError(code: string): void {
    this.errors++;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

export interface IngestLimits {
  maxFrameBytes: number;
  maxReadings: number;
}

export class Ingest {
  readonly stats = new IngestStats();
  private readonly header = {} as FrameHeader;
  private readonly batch: TelemetryBatch;
  private readonly telemetryListeners: TelemetryListener[] = [];
  private readonly ingestedListeners: IngestedListener[] = [];
  private readonly duplicateListeners: DuplicateListener[] = [];
  private readonly resultListeners: ResultListener[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly limits: IngestLimits,
  ) {
    this.batch = new TelemetryBatch(limits.maxReadings);
  }

  onTelemetry(listener: TelemetryListener): void {
    this.telemetryListeners.push(listener);
  }

  onIngested(listener: IngestedListener): void {
    this.ingestedListeners.push(listener);
  }

  onDuplicate(listener: DuplicateListener): void {
    this.duplicateListeners.push(listener);
  }

  onResult(listener: ResultListener): void {
    this.resultListeners.push(listener);
  }

  /** Takes one frame from a device. Returns a refusal when the connection must be closed. */
  handle(device: DeviceState, bytes: Uint8Array, now: number): IngestRefusal | undefined {
    device.lastSeen = now;
    const h = this.header;
    if (bytes.byteLength > this.limits.maxFrameBytes) {
      const r = this.refuse(device, 'FRAME_TOO_LARGE', `frame is ${bytes.byteLength} bytes; the limit is ${this.limits.maxFrameBytes} (--max-frame-bytes): drop this frame`);
      // The error frame names a telemetry frame it can read, so the device drops that one instead of resending it.
      if (decodeDeviceHeader(bytes, h) === undefined && h.type === FrameType.Telemetry) {
        r.epoch = h.epoch;
        r.seq = h.seq;
      }
      return r;
    }
    const err = decodeDeviceHeader(bytes, h);
    if (err) return this.refuse(device, err.code, err.message);
    switch (h.type) {
      case FrameType.Telemetry:
        return this.telemetry(device, bytes, h);
      case FrameType.CommandResult:
        return this.result(device, bytes);
      default:
        return this.refuse(device, 'FRAME_WRONG_DIRECTION', `frame type 0x${h.type.toString(16)} travels gateway → device only`);
    }
  }

  private telemetry(device: DeviceState, bytes: Uint8Array, h: FrameHeader): IngestRefusal | undefined {
    if (bytes.byteLength >= HEADER_BYTES + 2) {
      const count = bytes[HEADER_BYTES]! | (bytes[HEADER_BYTES + 1]! << 8);
      if (count > this.limits.maxReadings) {
        return this.refuse(device, 'TOO_MANY_READINGS', `frame has ${count} readings; the limit is ${this.limits.maxReadings} (--max-readings)`);
      }
    }
    const batch = this.batch;
    const err = decodeTelemetryInto(bytes, batch);
    if (err) return this.refuse(device, err.code, err.message);
    return this.take(device, h, batch, bytes, true);
  }

  /**
   * Takes readings that came in another encoding than a binary frame (JSON telemetry,
   * gateway/json/): the caller filled `h` (a telemetry header) and `batch`, and both stay the
   * caller's. `sequenced` false (a message without seq): no dedupe and no ack, so it is taken every
   * time it comes (at least once). Afterwards `taken` is the storage ticket, or DUPLICATE.
   */
  readings(device: DeviceState, h: FrameHeader, batch: TelemetryBatch, sequenced: boolean, now: number): IngestRefusal | undefined {
    device.lastSeen = now;
    if (batch.count > this.limits.maxReadings) {
      return this.refuse(device, 'TOO_MANY_READINGS', `the message has ${batch.count} readings; the limit is ${this.limits.maxReadings} (--max-readings)`);
    }
    return this.take(device, h, batch, NO_BYTES, sequenced);
  }

  /** The storage ticket of the last frame or message taken, or DUPLICATE when it was one. */
  taken = DUPLICATE;

  /** The one tail of every telemetry frame or message: time range, admission, dedupe, state, storage, events. */
  private take(device: DeviceState, h: FrameHeader, batch: TelemetryBatch, bytes: Uint8Array, sequenced: boolean): IngestRefusal | undefined {
    // Before dedupe sees the seq: a refused frame must come back as new, and nothing is acked for it.
    const late = this.outOfRange(h.timestamp, batch);
    if (late !== undefined) return this.refuseFrame(device, h, 'TIMESTAMP_OUT_OF_RANGE', late);
    if (!this.storage.admit()) return this.refuseFrame(device, h, 'STORAGE_FULL', 'the gateway cannot store more now (database away, memory and spill file full): keep the frame and resend it after reconnecting');
    if (sequenced && device.seq.accept(h.epoch, h.seq, (h.flags & FrameFlag.GapBefore) !== 0) === Verdict.Duplicate) {
      this.taken = DUPLICATE;
      device.duplicates++;
      this.stats.duplicates++;
      const ds = this.duplicateListeners;
      for (let i = 0; i < ds.length; i++) ds[i]!(device, h);
      return undefined;
    }
    this.stats.frames++;
    this.stats.readings += batch.count;
    const ticket = (this.taken = this.apply(device, h, batch));
    if (!sequenced) return undefined;
    const ls = this.ingestedListeners;
    for (let i = 0; i < ls.length; i++) ls[i]!(device, h, ticket, bytes);
    return undefined;
  }

  /** Counts, last values, storage and listeners for a new frame. Returns the storage ticket. */
  private apply(device: DeviceState, h: FrameHeader, batch: TelemetryBatch): number {
    device.frames++;
    device.readings += batch.count;
    const t = h.timestamp;
    for (let i = 0; i < batch.count; i++) device.setLast(batch.channels[i]!, batch.types[i]!, batch.values[i]!, t + batch.offsets[i]!);
    const ticket = this.storage.write(device.id, device.type, t, batch);
    const ls = this.telemetryListeners;
    for (let i = 0; i < ls.length; i++) ls[i]!(device, h, batch);
    return ticket;
  }

  private result(device: DeviceState, bytes: Uint8Array): IngestRefusal | undefined {
    const f = decodeFrame(bytes);
    if (f instanceof Error) return this.refuse(device, f.code, f.message);
    for (const l of this.resultListeners) l(device, f as CommandResultFrame);
    return undefined;
  }

  /** Why a reading's time is outside what storage keeps, or undefined when all are inside. */
  private outOfRange(t: number, batch: TelemetryBatch): string | undefined {
    if (batch.count === 0) return undefined;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < batch.count; i++) {
      const o = batch.offsets[i]!;
      if (o < lo) lo = o;
      if (o > hi) hi = o;
    }
    const r = this.storage.timeRange(Date.now());
    if (t + lo < r.from) return `a reading's time ${new Date(t + lo).toISOString()} is older than storage keeps (from ${new Date(r.from).toISOString()}, the retention policy): drop this frame and set the device's clock`;
    if (t + hi > r.to) return `a reading's time ${new Date(t + hi).toISOString()} is after what storage can hold (${new Date(r.to).toISOString()}): drop this frame and set the device's clock`;
    return undefined;
  }

  private refuseFrame(device: DeviceState, h: FrameHeader, code: ErrorCode, message: string): IngestRefusal {
    // A full store is the gateway's condition, not the device's fault: counted for the gateway only.
    const r: IngestRefusal = code === 'STORAGE_FULL' ? (this.stats.countError(code), { code, message }) : this.refuse(device, code, message);
    r.epoch = h.epoch;
    r.seq = h.seq;
    return r;
  }

  /** Counts a refusal against the device and the gateway. Also used by transports for their own refusals. */
  refuse(device: DeviceState, code: ErrorCode, message: string): IngestRefusal {
    device.errors++;
    device.lastErrorCode = code;
    this.stats.countError(code);
    return { code, message };
  }
}
