/**
 * One ingest path for every transport: decode → dedupe → device state → storage → listeners
 * (live fan-out). Frames are handled synchronously, so a transport may pass bytes that are only
 * valid during the call (uWS message buffers are).
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
}

/** Called for each new (not duplicate) telemetry frame, after storage took it. `batch` is reused. */
export type TelemetryListener = (device: DeviceState, header: FrameHeader, batch: TelemetryBatch) => void;
export type ResultListener = (device: DeviceState, result: CommandResultFrame) => void;

export class IngestStats {
  frames = 0;
  readings = 0;
  duplicates = 0;
  errors = 0;
  readonly errorsByCode = new Map<string, number>();
  /** Frames other instances ingested and this one applied to its device table and live views. */
  replicated = 0;

  countError(code: string): void {
    this.errors++;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

export interface IngestLimits {
  maxFrameBytes: number;
  maxReadings: number;
  /** Ack exactly the seqs taken (bridge mode: other gateways take the rest) instead of cumulatively. */
  rangeAcks?: boolean;
}

export class Ingest {
  readonly stats = new IngestStats();
  private readonly header = {} as FrameHeader;
  private readonly batch: TelemetryBatch;
  private readonly telemetryListeners: TelemetryListener[] = [];
  private resultListener: ResultListener | undefined;
  /** Devices owed an ack, in the order they became so; the ack scheduler drains it. */
  readonly ackQueue: DeviceState[] = [];
  /** Ticket of the newest storage write (see Storage.durableTicket). */
  lastTicket = 0;
  /** Advanced by the ack scheduler at each tick; frames of one tick share an unsettled entry. */
  tick = 0;
  /** Gets every new telemetry frame's bytes (cluster replication); valid during the call only. */
  onFrame: ((device: DeviceState, bytes: Uint8Array) => void) | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly limits: IngestLimits,
  ) {
    this.batch = new TelemetryBatch(limits.maxReadings);
  }

  onTelemetry(listener: TelemetryListener): void {
    this.telemetryListeners.push(listener);
  }

  onResult(listener: ResultListener): void {
    this.resultListener = listener;
  }

  /** Takes one frame from a device. Returns a refusal when the connection must be closed. */
  handle(device: DeviceState, bytes: Uint8Array, now: number): IngestRefusal | undefined {
    device.lastSeen = now;
    if (bytes.byteLength > this.limits.maxFrameBytes) {
      return this.refuse(device, 'FRAME_TOO_LARGE', `frame is ${bytes.byteLength} bytes; the limit is ${this.limits.maxFrameBytes} (--max-frame-bytes)`);
    }
    const h = this.header;
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
    const verdict = device.seq.accept(h.epoch, h.seq, (h.flags & FrameFlag.GapBefore) !== 0);
    this.owesAck(device);
    if (verdict === Verdict.Duplicate) {
      device.duplicates++;
      this.stats.duplicates++;
      device.ackOwed = true;
      // Safe already, or waiting in `unsettled`: the ack follows either way. A range-acked gateway
      // re-acks the single seq once whatever it waits for is settled.
      if (this.limits.rangeAcks) device.noteRangeAck(this.tick, this.lastTicket, h.seq);
      return undefined;
    }
    this.stats.frames++;
    this.stats.readings += batch.count;
    const ticket = this.apply(device, h, batch, true);
    if (this.limits.rangeAcks) device.noteRangeAck(this.tick, ticket, h.seq);
    else {
      const cur = device.seq.current!;
      // A late frame from the previous boot is stored but moves nothing the ack reports.
      if (cur.epoch === h.epoch) device.noteIngested(this.tick, ticket, cur.epoch, cur.contig);
    }
    this.onFrame?.(device, bytes);
    return undefined;
  }

  /**
   * A telemetry frame another gateway instance ingested (and deduplicated, stored and acked):
   * updates the device's state and the live views here, and stores it only when `store` (each
   * instance keeps its own in-memory history). Bad bytes are ignored: the sender checked them.
   * With `dedupe` its seq enters this instance's dedupe window, so a device that moves here does
   * not get the frames it resends counted twice. Not for frames of a shared subscription: the
   * broker gives each to one instance, in no order between them.
   */
  replica(device: DeviceState, bytes: Uint8Array, now: number, store: boolean, dedupe: boolean): void {
    const h = this.header;
    if (decodeHeader(bytes, h) !== undefined || h.type !== FrameType.Telemetry) return;
    if (decodeTelemetryInto(bytes, this.batch) !== undefined) return;
    if (dedupe && device.seq.accept(h.epoch, h.seq, (h.flags & FrameFlag.GapBefore) !== 0) === Verdict.Duplicate) return;
    device.lastSeen = now;
    this.stats.replicated++;
    this.apply(device, h, this.batch, store);
  }

  /** Counts, last values, storage and listeners for a new frame. Returns the storage ticket (0 when not stored). */
  private apply(device: DeviceState, h: FrameHeader, batch: TelemetryBatch, store: boolean): number {
    device.frames++;
    device.readings += batch.count;
    const t = h.timestamp;
    for (let i = 0; i < batch.count; i++) device.setLast(batch.channels[i]!, batch.types[i]!, batch.values[i]!, t + batch.offsets[i]!);
    const ticket = store ? (this.lastTicket = this.storage.write(device.id, device.type, t, batch)) : 0;
    const ls = this.telemetryListeners;
    for (let i = 0; i < ls.length; i++) ls[i]!(device, h, batch);
    return ticket;
  }

  private result(device: DeviceState, bytes: Uint8Array): IngestRefusal | undefined {
    const f = decodeFrame(bytes);
    if (f instanceof Error) return this.refuse(device, f.code, f.message);
    this.resultListener?.(device, f as CommandResultFrame);
    return undefined;
  }

  private owesAck(device: DeviceState): void {
    if (!device.ackDirty) {
      device.ackDirty = true;
      this.ackQueue.push(device);
    }
  }

  /** Counts a refusal against the device and the gateway. Also used by transports for their own refusals. */
  refuse(device: DeviceState, code: ErrorCode, message: string): IngestRefusal {
    device.errors++;
    device.lastErrorCode = code;
    this.stats.countError(code);
    return { code, message };
  }
}
