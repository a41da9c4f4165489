/**
 * What a fleet (one worker's devices) reports to the main thread every 500 ms: plain numbers and
 * one latency histogram, so a structured clone is a few hundred bytes. The main thread sums them.
 */
import { addInto, newHistogram } from './latency.js';

/** How often workers report. */
export const REPORT_MS = 500;

export interface FleetCounters {
  devices: number;
  /** Devices with an open connection right now. */
  connected: number;
  /** Devices that gave up for good (refused token, or closed with a 44xx "fix the device" code). */
  refused: number;
  /** Telemetry frames written for the first time (the SDK's stats.sent, over every boot). */
  sent: number;
  acked: number;
  resent: number;
  dropped: number;
  reconnects: number;
  /** Frames not acked yet, plus readings not yet in a frame. */
  unacked: number;
  readings: number;
  /** Commands answered, and reboots done. */
  commands: number;
  reboots: number;
  /** Chaos: extra copies written, frames written after their successor, malformed frames sent, connections dropped on purpose. */
  duplicated: number;
  reordered: number;
  malformed: number;
  churned: number;
  outages: number;
  /** Devices whose first connection has not opened (and that did not give up): they sent nothing. */
  neverConnected: number;
  /** SDK 'error' events, and by code. */
  errors: number;
  errorsByCode: Record<string, number>;
  /** The first message seen for each error code: the reason a person needs ("ECONNREFUSED", "self-signed certificate", "HTTP 401"). */
  errorSamples: Record<string, string>;
  /** Ack latency histogram (see latency.ts), cumulative. */
  latency: Uint32Array;
}

const NUMERIC = [
  'devices',
  'connected',
  'refused',
  'sent',
  'acked',
  'resent',
  'dropped',
  'reconnects',
  'unacked',
  'readings',
  'commands',
  'reboots',
  'duplicated',
  'reordered',
  'malformed',
  'churned',
  'outages',
  'neverConnected',
  'errors',
] as const satisfies readonly (keyof FleetCounters)[];

export function emptyCounters(): FleetCounters {
  const c = { errorsByCode: {}, errorSamples: {}, latency: newHistogram() } as Partial<FleetCounters>;
  for (const k of NUMERIC) c[k] = 0;
  return c as FleetCounters;
}

/** Adds `from` into `into` and returns `into`. */
export function addCounters(into: FleetCounters, from: FleetCounters): FleetCounters {
  for (const k of NUMERIC) into[k] += from[k];
  for (const [code, n] of Object.entries(from.errorsByCode)) into.errorsByCode[code] = (into.errorsByCode[code] ?? 0) + n;
  for (const [code, message] of Object.entries(from.errorSamples)) into.errorSamples[code] ??= message;
  addInto(into.latency, from.latency);
  return into;
}

export function sumCounters(list: Iterable<FleetCounters>): FleetCounters {
  const out = emptyCounters();
  for (const c of list) addCounters(out, c);
  return out;
}

export function countError(c: FleetCounters, code: string, message?: string): void {
  c.errors++;
  c.errorsByCode[code] = (c.errorsByCode[code] ?? 0) + 1;
  if (message !== undefined) c.errorSamples[code] ??= message;
}
