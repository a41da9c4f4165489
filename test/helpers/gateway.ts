/** Starts real gateways for tests: in-process on port 0, or as a child process of the built CLI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fleetToken } from '../../devices/token.js';
import { defaultConfig, type GatewayConfig } from '../../gateway/config.js';
import { Gateway, type GatewayDeps } from '../../gateway/gateway.js';
import { waitFor } from './wait.js';

export const FLEET_KEY = 'test-fleet-key';
export const OPERATOR_TOKEN = 'test-operator-token';
export const ROOT = new URL('../../', import.meta.url).pathname;

export function tempDir(prefix = 'gw-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function deviceToken(id: string): string {
  return fleetToken(FLEET_KEY, id);
}

export interface TestGateway {
  gateway: Gateway;
  http: string;
  ws: string;
  dataDir: string;
  api<T = any>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export function testConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    ...defaultConfig(),
    host: '127.0.0.1',
    port: 0,
    fleetKey: FLEET_KEY,
    operatorToken: OPERATOR_TOKEN,
    dataDir: tempDir(),
    mqttPort: 0,
    logLevel: 'silent',
    ...overrides,
  };
}

export async function api<T = any>(base: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  // No keep-alive: tests restart gateways on the same port, and a pooled connection would still
  // reach the stopped one.
  const res = await fetch(base + path, { ...init, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, connection: 'close', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export async function startGateway(overrides: Partial<GatewayConfig> = {}, deps: GatewayDeps = {}): Promise<TestGateway> {
  const config = testConfig(overrides);
  const gateway = new Gateway(config, deps);
  await gateway.start();
  const http = `http://127.0.0.1:${gateway.port}`;
  return {
    gateway,
    http,
    ws: `ws://127.0.0.1:${gateway.port}`,
    dataDir: config.dataDir,
    api: (path, init) => api(http, path, init),
    close: async () => {
      await gateway.close();
      rmSync(config.dataDir, { recursive: true, force: true });
    },
  };
}

export interface ChildGateway {
  proc: ChildProcess;
  port: number;
  /** Port of its embedded MQTT broker, 0 when off. */
  mqttPort: number;
  http: string;
  ws: string;
  /** The operator API of this gateway. */
  api<T = any>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  output(): string;
  /** Stops the process by its PID: SIGTERM (or the given signal), then waits for exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The flags every test gateway process gets (later flags win): localhost on any free port, the test fleet key and operator token, a data folder. */
export function gatewayArgs(dataDir: string = tempDir(), ...extra: string[]): string[] {
  return ['--host', '127.0.0.1', '--port', '0', '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN, '--data-dir', dataDir, ...extra];
}

/** Values of one channel's history (points: one per reading when `n` covers them) from `from` for `n` ms. */
export async function historyValues(base: string, id: string, channel: number, from: number, n: number): Promise<number[]> {
  const { body } = await api(base, `/api/devices/${id}/history?channel=${channel}&from=${from}&to=${from + n}&points=${n + 10}`);
  return body.points.map((p: { mean: number }) => p.mean);
}

/** Runs the built CLI (`dist/gateway/cli.js`) as a child process and waits for its URL line. */
export async function spawnGateway(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildGateway> {
  // Tests never take the default MQTT port 1883 unless they ask for a port.
  if (!args.some((a) => a.startsWith('--mqtt-port'))) args = [...args, '--mqtt-port', '0'];
  const proc = spawn(process.execPath, [join(ROOT, 'dist/gateway/cli.js'), ...args], {
    env: { ...process.env, GATEWAY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const port = await Promise.race([
    waitFor(() => Number(/listening on http:\/\/[^:]+:(\d+)/.exec(out)?.[1] ?? 0), 'the gateway to print its URL', 15_000),
    exited.then((code) => {
      throw new Error(`gateway exited with ${code} before listening: ${out}`);
    }),
  ]).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw err;
  });
  const http = `http://127.0.0.1:${port}`;
  return {
    proc,
    port,
    mqttPort: Number(/MQTT on mqtts?:\/\/[^\s;]+:(\d+)/.exec(out)?.[1] ?? 0),
    http,
    ws: `ws://127.0.0.1:${port}`,
    api: (path, init) => api(http, path, init),
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
