/**
 * JSON telemetry into the one ingest path: a message (or an array of them) is parsed and checked
 * whole, then each message fills the reused header and TelemetryBatch a binary frame would, and
 * goes through Ingest.readings(): the same dedupe, storage, state, live and acks as a frame. The
 * transports (MQTT via session/sessions.ts, HTTP via http-route.ts) answer once SafeWaits says the
 * readings are safe.
 */
import { FrameType, PROTOCOL_VERSION, TelemetryBatch, type FrameHeader } from '../../devices/codec/index.js';
import type { DeviceState } from '../devices.js';
import { DUPLICATE, type Ingest, type IngestRefusal } from '../ingest.js';
import { fillReadings } from './channels.js';
import { parseJsonTelemetry } from './parse.js';
import type { SafeMark, SafeWaits } from './safety.js';

export interface JsonLimits {
  /** Largest message in bytes (--max-frame-bytes). */
  maxBytes: number;
  /** Most readings in one message (--max-readings). */
  maxReadings: number;
}

/** What was taken of a body: messages new and duplicate, and when all of them are safe. */
export interface JsonTaken {
  accepted: number;
  duplicates: number;
  safe: Promise<boolean>;
}

/** A refused body; the first `accepted` messages of an array were taken before (STORAGE_FULL, TIMESTAMP_OUT_OF_RANGE). */
export interface JsonRefused {
  refusal: IngestRefusal;
  accepted: number;
}

const ANSWERED = Promise.resolve(true);

export class JsonTelemetry {
  private readonly header: FrameHeader = { version: PROTOCOL_VERSION, type: FrameType.Telemetry, flags: 0, epoch: 0, seq: 0, timestamp: 0 };
  private readonly batch: TelemetryBatch;
  /** Messages taken, by transport (`gateway_json_messages_total`). */
  readonly messages = { mqtt: 0, bridge: 0, http: 0 };

  constructor(
    private readonly ingest: Ingest,
    private readonly waits: SafeWaits,
    private readonly limits: JsonLimits,
  ) {
    this.batch = new TelemetryBatch(limits.maxReadings);
  }

  /**
   * Takes a JSON body from `device` (bytes valid during the call only). A refusal is counted against
   * the device and the gateway already; the caller records and answers it.
   */
  take(device: DeviceState, bytes: Uint8Array, now: number, transport: keyof JsonTelemetry['messages']): JsonTaken | JsonRefused {
    const ingest = this.ingest;
    if (bytes.byteLength > this.limits.maxBytes) {
      return this.refused(ingest.refuse(device, 'FRAME_TOO_LARGE', `the message is ${bytes.byteLength} bytes; the limit is ${this.limits.maxBytes} (--max-frame-bytes): drop it`), 0);
    }
    const list = parseJsonTelemetry(bytes);
    if (!Array.isArray(list)) return this.refused(ingest.refuse(device, list.code, list.message), 0);
    const batch = this.batch;
    // Every message is checked before any is taken: a bad one refuses the body, and nothing of it is stored.
    for (let i = 0; i < list.length; i++) {
      const p = fillReadings(device.type, device.id, list[i]!, batch);
      if (p) return this.refused(ingest.refuse(device, p.code, list.length > 1 ? `message ${i}: ${p.message}` : p.message), 0);
    }
    const h = this.header;
    const marks: SafeMark[] = [];
    let accepted = 0;
    let duplicates = 0;
    for (const m of list) {
      fillReadings(device.type, device.id, m, batch);
      const sequenced = m.seq !== undefined;
      h.epoch = m.epoch;
      h.seq = m.seq ?? 0;
      h.timestamp = m.ts ?? now;
      const r = ingest.readings(device, h, batch, sequenced, now);
      if (r) return this.refused(r, accepted + duplicates);
      if (ingest.taken === DUPLICATE) duplicates++;
      else accepted++;
      this.messages[transport]++;
      marks.push({ device, sequenced, epoch: h.epoch, seq: h.seq, ticket: ingest.taken });
    }
    // Behind an external broker the broker PUBACKed already: nothing waits for an answer.
    return { accepted, duplicates, safe: transport === 'bridge' ? ANSWERED : this.waits.wait(marks, now) };
  }

  private refused(refusal: IngestRefusal, accepted: number): JsonRefused {
    return { refusal, accepted };
  }
}
