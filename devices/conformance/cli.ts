/**
 * `npm run conformance -- --url http://gateway:8080 --fleet-key KEY`: drives a live gateway over
 * raw WebSocket and raw MQTT through the rules of devices/PROTOCOL.md and prints a pass/fail
 * table. Exit status: 0 all passed, 1 a check failed, 2 bad options.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Check } from './check.js';
import { ackSequenceChecks } from './ack-sequences.js';
import { mqttChecks } from './checks-mqtt.js';
import { wsChecks } from './checks-ws.js';
import { deviceSource, type Context } from './context.js';

const HELP = `Usage: npm run conformance -- --url <gateway> (--fleet-key KEY | --device-id ID --token TOKEN) [options]

Checks a running gateway against devices/PROTOCOL.md over raw WebSocket and raw MQTT.

  --url URL             the gateway's HTTP(S) base, e.g. http://localhost:8080 (ws:// and wss:// follow)
  --mqtt-url URL        mqtt://host:port or mqtts://host:port of its broker; default: the --url host
                        on 1883 (8883 for https); "none" skips the MQTT checks
  --fleet-key KEY       the gateway's fleet key: every check gets a fresh device id (prefix: --device-id
                        or "conformance")
  --device-id ID        with --token: run every check as this one device (sequentially)
  --token TOKEN         that device's token
  --operator-token T    also check the command round trip and that a resend is counted once
  --max-frame-bytes N   the gateway's --max-frame-bytes (default 65536)
  --ca FILE             trust this CA (PEM) for wss:// and mqtts://
  --only TEXT[,TEXT]    run only the checks whose name contains one of these
  --timeout MS          per wait (default 5000)
  --json                print the results as JSON instead of a table
  --list                list the checks and exit
  --help                this text`;

interface Result {
  name: string;
  spec: string;
  result: 'pass' | 'FAIL' | 'skip';
  ms: number;
  detail: string;
}

function usage(message: string): never {
  process.stderr.write(`conformance: ${message}\n\n${HELP}\n`);
  process.exit(2);
}

function context(): { ctx: Context; only: string[]; json: boolean; list: boolean } {
  let v;
  try {
    v = parseArgs({
      options: {
        url: { type: 'string' },
        'mqtt-url': { type: 'string' },
        'fleet-key': { type: 'string' },
        'device-id': { type: 'string' },
        token: { type: 'string' },
        'operator-token': { type: 'string' },
        'max-frame-bytes': { type: 'string', default: '65536' },
        ca: { type: 'string' },
        only: { type: 'string' },
        timeout: { type: 'string', default: '5000' },
        json: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  if (v.help) {
    process.stdout.write(HELP + '\n');
    process.exit(0);
  }
  const only = v.only ? v.only.split(',').map((s) => s.trim()).filter(Boolean) : [];
  if (v.list) return { ctx: undefined as unknown as Context, only, json: v.json, list: true };
  if (!v.url) usage('--url is required');
  let http: URL;
  try {
    http = new URL(v.url);
  } catch {
    usage(`--url ${v.url} is not a URL`);
  }
  if (http.protocol !== 'http:' && http.protocol !== 'https:') usage(`--url must be http:// or https://, not ${http.protocol}`);
  if (v['fleet-key'] === undefined && (v['device-id'] === undefined || v.token === undefined)) usage('give --fleet-key, or --device-id and --token');
  let mqtt: URL | undefined;
  if (v['mqtt-url'] !== 'none') {
    const raw = v['mqtt-url'] ?? `${http.protocol === 'https:' ? 'mqtts' : 'mqtt'}://${http.hostname}:${http.protocol === 'https:' ? 8883 : 1883}`;
    try {
      mqtt = new URL(raw);
    } catch {
      usage(`--mqtt-url ${raw} is not a URL`);
    }
    if (mqtt.protocol !== 'mqtt:' && mqtt.protocol !== 'mqtts:') usage(`--mqtt-url must be mqtt:// or mqtts:// (or none), not ${mqtt.protocol}`);
  }
  const timeoutMs = Number(v.timeout);
  const maxFrameBytes = Number(v['max-frame-bytes']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage('--timeout must be a positive number of ms');
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes <= 0) usage('--max-frame-bytes must be a positive integer');
  let ca: Buffer | undefined;
  if (v.ca) {
    try {
      ca = readFileSync(v.ca);
    } catch (err) {
      usage(`--ca ${v.ca}: ${(err as Error).message}`);
    }
  }
  const base = http.origin;
  const ws = { base: base.replace(/^http/, 'ws'), ca };
  return {
    ctx: { http: base, ws, mqtt, ca, operatorToken: v['operator-token'], maxFrameBytes, timeoutMs, ...deviceSource({ deviceId: v['device-id'], token: v.token, fleetKey: v['fleet-key'] }) },
    only,
    json: v.json,
    list: false,
  };
}

async function runOne(check: Check, ctx: Context): Promise<Result> {
  const skip = check.skip?.(ctx);
  if (skip) return { name: check.name, spec: check.spec, result: 'skip', ms: 0, detail: skip };
  const start = Date.now();
  // The outer bound: a check whose own waits are all bounded still cannot hang the run.
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the check took over ${ctx.timeoutMs * 6} ms`)), ctx.timeoutMs * 6);
  });
  try {
    const note = await Promise.race([check.run(ctx), limit]);
    return { name: check.name, spec: check.spec, result: 'pass', ms: Date.now() - start, detail: note ?? '' };
  } catch (err) {
    return { name: check.name, spec: check.spec, result: 'FAIL', ms: Date.now() - start, detail: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

function table(results: Result[]): string {
  const w = Math.max(...results.map((r) => r.name.length));
  const lines = results.map((r) => `${r.result.padEnd(5)} ${r.name.padEnd(w)} ${String(r.ms).padStart(5)} ms  ${r.detail}`);
  const count = (k: Result['result']) => results.filter((r) => r.result === k).length;
  return [`${'result'.padEnd(5)} ${'check'.padEnd(w)}  time    detail`, ...lines, '', `${count('pass')} passed, ${count('FAIL')} failed, ${count('skip')} skipped`].join('\n');
}

async function main(): Promise<void> {
  const { ctx, only, json, list } = context();
  const all = [...wsChecks(), ...ackSequenceChecks(), ...mqttChecks()];
  const checks = only.length ? all.filter((c) => only.some((o) => c.name.includes(o))) : all;
  if (list) {
    process.stdout.write(checks.map((c) => `${c.name}  (${c.spec})`).join('\n') + '\n');
    return;
  }
  if (checks.length === 0) usage(`--only ${only.join(',')} matches no check (see --list)`);
  const results: Result[] = [];
  for (const check of checks) {
    const r = await runOne(check, ctx);
    results.push(r);
    if (!json) process.stderr.write(`${r.result} ${r.name}\n`);
  }
  process.stdout.write((json ? JSON.stringify({ results }, null, 2) : table(results)) + '\n');
  process.exitCode = results.some((r) => r.result === 'FAIL') ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`conformance: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
