/**
 * The end of a run: one object with the DESIGN contract's `devices`, `sent` and `acked` (frame
 * counts) and everything else a script might check, plus the same as a few lines for people.
 */
import type { FleetCounters } from './counters.js';
import { percentile } from './latency.js';
import type { SimulatorOptions } from './options.js';

export interface Summary {
  /** Every device connected and every frame it sent was acked: nothing unacked, nothing dropped, no device gave up. */
  ok: boolean;
  devices: number;
  transport: string;
  url: string;
  /** Telemetry frames written for the first time (chaos duplicates not included: see chaos.duplicated). */
  sent: number;
  acked: number;
  /** Frames left without an ack after the drain. */
  unacked: number;
  readings: number;
  resent: number;
  dropped: number;
  reconnects: number;
  /** Devices that gave up (refused token, 44xx close). */
  refused: number;
  /** Devices whose connection never opened (gateway down, wrong URL, untrusted certificate): they sent nothing. */
  neverConnected: number;
  ackLatencyMs: { p50: number | null; p99: number | null };
  errors: number;
  errorsByCode: Record<string, number>;
  /** One message per error code: why devices failed (e.g. "could not connect: connect ECONNREFUSED 127.0.0.1:1"). */
  reasons: Record<string, string>;
  commands: number;
  reboots: number;
  chaos: { duplicated: number; reordered: number; malformed: number; churned: number; outageDrops: number };
  /** Seconds from start until sending stopped, and how long the drain took. */
  durationS: number;
  drainS: number;
  /** Frames sent per second over durationS. */
  framesPerSecond: number;
  workers: number;
}

export function buildSummary(o: SimulatorOptions, c: FleetCounters, durationS: number, drainS: number): Summary {
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    ok: c.unacked === 0 && c.dropped === 0 && c.acked === c.sent && c.refused === 0 && c.neverConnected === 0,
    devices: o.devices,
    transport: o.transport,
    url: o.url,
    sent: c.sent,
    acked: c.acked,
    unacked: c.unacked,
    readings: c.readings,
    resent: c.resent,
    dropped: c.dropped,
    reconnects: c.reconnects,
    refused: c.refused,
    neverConnected: c.neverConnected,
    ackLatencyMs: { p50: percentile(c.latency, 50), p99: percentile(c.latency, 99) },
    errors: c.errors,
    errorsByCode: c.errorsByCode,
    reasons: c.errorSamples,
    commands: c.commands,
    reboots: c.reboots,
    chaos: { duplicated: c.duplicated, reordered: c.reordered, malformed: c.malformed, churned: c.churned, outageDrops: c.outages },
    durationS: round(durationS),
    drainS: round(drainS),
    framesPerSecond: durationS > 0 ? Math.round(c.sent / durationS) : 0,
    workers: o.workers,
  };
}

const n = (x: number): string => x.toLocaleString('en-US');
const ms = (x: number | null): string => (x === null ? '–' : `${x} ms`);

/** The summary for people: a few lines, the verdict last. */
export function formatSummary(s: Summary): string {
  const lines = [
    `simulated ${n(s.devices)} ${plural(s.devices, 'device')} over ${s.transport} (${s.url}) for ${s.durationS} s with ${s.workers === 0 ? 'no worker threads' : `${s.workers} worker thread${s.workers === 1 ? '' : 's'}`}`,
    `  frames: sent ${n(s.sent)} (${n(s.framesPerSecond)}/s), acked ${n(s.acked)}, resent ${n(s.resent)}, dropped ${n(s.dropped)}; readings ${n(s.readings)}`,
    `  reconnects ${n(s.reconnects)}, ack latency p50 ${ms(s.ackLatencyMs.p50)} p99 ${ms(s.ackLatencyMs.p99)}, commands ${n(s.commands)} (reboots ${n(s.reboots)})`,
  ];
  const ch = s.chaos;
  if (ch.duplicated + ch.reordered + ch.malformed + ch.churned + ch.outageDrops > 0) {
    lines.push(`  chaos: duplicated ${n(ch.duplicated)}, reordered ${n(ch.reordered)}, malformed ${n(ch.malformed)}, churned ${n(ch.churned)}, outage drops ${n(ch.outageDrops)}`);
  }
  if (s.errors > 0) lines.push(`  device-side errors ${n(s.errors)}: ${Object.entries(s.errorsByCode).map(([k, v]) => `${k} ${n(v)}`).join(', ')}`);
  for (const [code, message] of Object.entries(s.reasons)) lines.push(`    ${code}: ${message}${hint(message)}`);
  if (s.refused > 0) lines.push(`  ${n(s.refused)} ${plural(s.refused, 'device')} gave up (refused token or a "fix the device" close): is --fleet-key the gateway's?`);
  if (s.neverConnected > 0) lines.push(`  ${n(s.neverConnected)} ${plural(s.neverConnected, 'device')} never connected: is the gateway running at ${s.url}? (the reasons are above)`);
  lines.push(verdict(s));
  return lines.join('\n');
}

function plural(count: number, word: string): string {
  return count === 1 ? word : `${word}s`;
}

/** What to do about the reasons people hit first. */
function hint(message: string): string {
  if (/certificate|CERT_|self.signed/i.test(message)) return ' (trust its CA with --ca FILE, or NODE_EXTRA_CA_CERTS=FILE)';
  return '';
}

function verdict(s: Summary): string {
  if (s.ok) return `OK: every one of the ${n(s.sent)} frames sent was acked by the gateway`;
  const lost = s.unacked + s.dropped > 0 || s.acked !== s.sent;
  if (!lost) {
    const failed = [s.neverConnected > 0 ? `${n(s.neverConnected)} never connected` : '', s.refused > 0 ? `${n(s.refused)} were refused` : ''].filter(Boolean).join(', ');
    return `NOT OK: of ${n(s.devices)} ${plural(s.devices, 'device')}, ${failed} (every frame that was sent was acked)`;
  }
  return `NOT OK: ${n(s.unacked)} frames unacked after the ${s.drainS} s drain, ${n(s.dropped)} dropped from a full outbox (sent ${n(s.sent)}, acked ${n(s.acked)})`;
}
