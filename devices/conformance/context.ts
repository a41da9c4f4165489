/** What every check gets: where the gateway is, how to be a device there, and the spec's vectors. */
import { readFileSync } from 'node:fs';
import { encodeTelemetry, FrameFlag, type AckFrame, type ErrorCode, type FrameErrorCode } from '../codec/index.js';
import { randomEpoch } from '../sdk/options.js';
import { fleetToken } from '../token.js';
import type { WsTarget } from './raw-ws.js';

export interface Credentials {
  id: string;
  token: string;
}

export interface Context {
  http: string;
  ws: WsTarget;
  /** undefined: MQTT checks are skipped (--mqtt-url none). */
  mqtt: URL | undefined;
  ca: Buffer | undefined;
  operatorToken: string | undefined;
  maxFrameBytes: number;
  timeoutMs: number;
  /** A device to be: a fresh id per call with --fleet-key, else always the one given. */
  device(): Credentials;
  /** True when device() gives fresh ids (checks that need a second id may run). */
  fleet: boolean;
}

export function deviceSource(opts: { deviceId?: string | undefined; token?: string | undefined; fleetKey?: string | undefined }): { device(): Credentials; fleet: boolean } {
  if (opts.fleetKey !== undefined) {
    const key = opts.fleetKey;
    const run = Date.now().toString(36);
    let n = 0;
    const prefix = opts.deviceId ?? 'conformance';
    return { fleet: true, device: () => ({ id: `${prefix}-${run}-${n}`, token: fleetToken(key, `${prefix}-${run}-${n++}`) }) };
  }
  const creds = { id: opts.deviceId!, token: opts.token! };
  return { fleet: false, device: () => creds };
}

export interface InvalidVector {
  name: string;
  hex: string;
  code: FrameErrorCode;
  gatewayCode: ErrorCode;
}

/** devices/vectors/invalid.json, from the source tree or next to the built dist/. */
export function invalidVectors(): InvalidVector[] {
  for (const rel of ['../vectors/invalid.json', '../../../devices/vectors/invalid.json']) {
    try {
      return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as InvalidVector[];
    } catch {
      // try the next layout
    }
  }
  throw new Error('devices/vectors/invalid.json not found next to the conformance runner');
}

/** One vector per code the gateway answers, in file order: the sample the checks send. */
export function vectorSample(all: InvalidVector[]): InvalidVector[] {
  const seen = new Set<string>();
  return all.filter((v) => !seen.has(v.gatewayCode) && seen.add(v.gatewayCode));
}

/** A telemetry frame of one reading: each check uses its own random epoch, so reruns never collide. */
export function telemetry(epoch: number, seq: number, flags = 0): Uint8Array {
  return encodeTelemetry({ epoch, seq, timestamp: Date.now(), flags }, [{ channel: 0, value: seq }]);
}

export const newEpoch = randomEpoch;

/** Whether the acks cover `seq` of their epoch: a cumulative ack up to it, or a range ack holding it. */
export function covered(acks: AckFrame[], seq: number): boolean {
  return acks.some((a) => ((a.flags & FrameFlag.AckRange) !== 0 && a.firstSeq !== undefined ? a.firstSeq <= seq && seq <= a.seq : seq <= a.seq));
}
