/**
 * The wire format's golden vectors (devices/vectors/*.json), loaded for the codec tests, the
 * gateway tests and the benchmarks. Spec and meaning of each file: devices/PROTOCOL.md.
 */
import { readFileSync } from 'node:fs';
import type { ErrorCode, Frame, FrameErrorCode, TelemetryFrame } from '../devices/codec/index.js';

export interface ValidVector {
  name: string;
  /** The frame's bytes, lowercase hex without separators. */
  hex: string;
  /** The frame exactly as decodeFrame returns it. */
  frame: Frame;
}

export interface InvalidVector {
  name: string;
  hex: string;
  /** The FrameError code decodeFrame returns for these bytes. */
  code: FrameErrorCode;
  /** The code a gateway (default limits) answers when a device sends these bytes. */
  gatewayCode: ErrorCode;
}

function load<T>(file: string): T[] {
  return JSON.parse(readFileSync(new URL(`../devices/vectors/${file}`, import.meta.url), 'utf8')) as T[];
}

export const validVectors: ValidVector[] = load<ValidVector>('valid.json');
export const invalidVectors: InvalidVector[] = load<InvalidVector>('invalid.json');

export function validVector(name: string): ValidVector {
  const v = validVectors.find((x) => x.name === name);
  if (!v) throw new Error(`no valid vector named "${name}"`);
  return v;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-f]/.test(hex)) throw new Error(`not lowercase hex bytes: "${hex}"`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** The same telemetry message as JSON text, as a device would send it without this format (benchmarks). */
export function telemetryAsJson(f: TelemetryFrame): string {
  return JSON.stringify({
    v: f.version,
    type: 'telemetry',
    epoch: f.epoch,
    seq: f.seq,
    ts: f.timestamp,
    readings: f.readings.map((r) => ({ ch: r.channel, t: r.type, v: r.value })),
  });
}
