/**
 * `--workers N`: N gateway processes on one machine, one cluster. Each worker is a whole gateway on
 * the same ports: uWS listens with SO_REUSEPORT, so the kernel spreads HTTP/WebSocket connections
 * over the workers; Node's cluster module shares the embedded MQTT listener. Each worker owns the
 * devices connected to it, as any cluster instance does (cluster.ts): the workers share presence,
 * summaries, live points by interest, history requests and command routing over a backbone: an
 * internal aedes broker the primary runs on 127.0.0.1 with a generated password, or the cluster's
 * own broker when there is one (--cluster-url / --mqtt-url), so the workers of several machines
 * form one cluster.
 *
 * The primary only supervises: it starts the workers (for --port 0 it picks the free port they
 * all share: uWS does not share a port the kernel chose), restarts one that dies, answers /metrics
 * with the sum over workers (prom-client's AggregatorRegistry), and on SIGTERM/SIGINT stops them
 * all gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { GatewayConfig } from '../config.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { PrimaryLoginRelay } from '../login/sync.js';

/** Settings the primary hands each worker; they override flags, env and config file. */
const ENV = {
  index: 'GATEWAY_WORKER_INDEX',
  backbone: 'GATEWAY_WORKER_BACKBONE',
  token: 'GATEWAY_WORKER_OPERATOR_TOKEN',
  port: 'GATEWAY_WORKER_PORT',
} as const;

interface Listening {
  type: 'gateway:listening';
  url: string;
  port: number;
  mqttUrl?: string;
}
interface MetricsRequest {
  type: 'gateway:metrics';
  id: number;
}
interface MetricsAnswer {
  type: 'gateway:metrics';
  id: number;
  text?: string;
  error?: string;
}

/** Restarts allowed per worker in RESTART_WINDOW_MS before the primary gives up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export const isWorker = (): boolean => cluster.isWorker && process.env[ENV.index] !== undefined;

/** In a worker: the config as the primary means it for this worker. */
export function workerConfig(c: GatewayConfig): GatewayConfig {
  const index = Number(process.env[ENV.index]);
  const backbone = process.env[ENV.backbone];
  // On the internal backbone the names only need to differ between workers; on a shared broker
  // they must differ from every other machine's too.
  const base = c.instanceId ?? (backbone ? 'worker' : `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${process.ppid}`);
  return {
    ...c,
    workers: 1,
    dataDir: join(c.dataDir, `worker-${index}`),
    instanceId: `${base}-${index}`,
    operatorToken: process.env[ENV.token] ?? c.operatorToken,
    clusterUrl: backbone ?? c.clusterUrl,
    port: process.env[ENV.port] ? Number(process.env[ENV.port]) : c.port,
  };
}

/** In a worker: tells the primary where it listens. */
export function reportListening(msg: Omit<Listening, 'type'>): void {
  process.send?.({ type: 'gateway:listening', ...msg } satisfies Listening);
}

/** In a worker: /metrics text summed over every worker, asked of the primary. */
export function clusterMetrics(local: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([local]);
  // Constructing one installs prom-client's worker-side listener that answers the primary.
  new AggregatorRegistry();
  let next = 0;
  const waiting = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
  process.on('message', (m: MetricsAnswer) => {
    if (m?.type !== 'gateway:metrics') return;
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.text !== undefined) w?.resolve(m.text);
    else w?.reject(new Error(m.error ?? 'no metrics from the primary'));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const t = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary did not answer for metrics within 5 s'));
      }, 5000);
      waiting.set(id, {
        resolve: (text) => (clearTimeout(t), resolve(text)),
        reject: (err) => (clearTimeout(t), reject(err)),
      });
      process.send?.({ type: 'gateway:metrics', id } satisfies MetricsRequest);
    });
}

/** An aedes broker on 127.0.0.1 that only the workers may use: the backbone when no external one is set. */
async function internalBackbone(): Promise<{ url: string; close(): Promise<void> }> {
  const password = randomBytes(18).toString('base64url');
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, pw, done) => done(null, username === 'gateway' && pw?.toString() === password),
  });
  const server: Server = createServer(broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://gateway:${password}@127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port free on `host` now, for --port 0. */
async function freePort(host: string): Promise<number> {
  const s = createServer();
  s.listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Fails when something already listens on host:port. The workers listen with SO_REUSEPORT to share
 * the port among themselves, which would also let them join another gateway's port silently; a
 * plain listen (no SO_REUSEPORT) refuses a port in use, so the primary checks before forking.
 */
async function checkPortFree(host: string, port: number, flag: string): Promise<void> {
  const s = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => resolve());
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GatewayError(
      'LISTEN_FAILED',
      `could not listen on ${host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use (another gateway?)' : (err as Error).message}; stop the other process or choose another port with ${flag}`,
    );
  }
  await new Promise<void>((r) => s.close(() => r()));
}

export interface PrimaryResult {
  /** Resolves with the exit code once every worker has stopped. */
  stopped: Promise<number>;
  stop(signal: string): void;
  url: string;
  mqttUrl: string | undefined;
  operatorToken: string;
}

/** In the primary: starts the backbone and the workers, and supervises them. */
export async function runPrimary(config: GatewayConfig, log: Logger): Promise<PrimaryResult> {
  const backbone = config.clusterUrl === undefined && config.mqttUrl === undefined ? await internalBackbone() : undefined;
  const operatorToken = config.operatorToken ?? randomBytes(24).toString('hex');
  const aggregator = new AggregatorRegistry();
  cluster.setupPrimary({ exec: process.argv[1]!, args: process.argv.slice(2) });

  let stopping = false;
  let port = config.port;
  const workers = new Map<number, Worker>();
  // Login codes are spent, and logouts known, in every worker (a browser reaches any of them).
  const logins = new PrimaryLoginRelay(() => workers.values());
  const restarts = new Map<number, number[]>();
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => (resolveStopped = r));
  let exitCode = 0;

  const fork = (index: number): Worker => {
    const env: Record<string, string> = { [ENV.index]: String(index), [ENV.token]: operatorToken };
    if (backbone) env[ENV.backbone] = backbone.url;
    if (port !== 0) env[ENV.port] = String(port);
    const w = cluster.fork(env);
    workers.set(index, w);
    w.on('message', (m: MetricsRequest) => {
      if (logins.handle(w, m)) return;
      if (m?.type !== 'gateway:metrics') return;
      aggregator.clusterMetrics().then(
        (text) => w.isConnected() && w.send({ type: 'gateway:metrics', id: m.id, text } satisfies MetricsAnswer),
        (err: Error) => w.isConnected() && w.send({ type: 'gateway:metrics', id: m.id, error: err.message } satisfies MetricsAnswer),
      );
    });
    return w;
  };

  const listening = (w: Worker, index: number): Promise<Listening> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: Listening) => {
        if (m?.type !== 'gateway:listening') return;
        w.off('exit', onExit);
        w.off('message', onMessage);
        resolve(m);
      };
      const onExit = (code: number | null) => {
        w.off('message', onMessage);
        reject(new GatewayError('WORKER_START', `worker ${index} exited with ${code} before listening (its error is above)`));
      };
      w.on('message', onMessage);
      w.once('exit', onExit);
    });

  const stopAll = async (): Promise<void> => {
    const exits = [...workers.values()].map((w) =>
      w.isDead()
        ? Promise.resolve()
        : once(w, 'exit').then(([code]) => {
            if (code !== 0) exitCode = 1;
          }),
    );
    for (const w of workers.values()) if (!w.isDead() && w.process.pid) process.kill(w.process.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      for (const w of workers.values()) {
        if (!w.isDead() && w.process.pid) {
          log.error({ pid: w.process.pid }, 'a worker did not stop within 15 s; killing it');
          exitCode = 1;
          process.kill(w.process.pid, 'SIGKILL');
        }
      }
    }, STOP_TIMEOUT_MS);
    await Promise.all(exits);
    clearTimeout(timer);
    await backbone?.close();
  };

  let first: Listening;
  try {
    if (port === 0) port = await freePort(config.host);
    else await checkPortFree(config.host, port, '--port (GATEWAY_PORT)');
    if (config.cert !== undefined && config.plaintextPort !== 0) await checkPortFree(config.host, config.plaintextPort, '--plaintext-port (GATEWAY_PLAINTEXT_PORT)');
    [first] = (await Promise.all(Array.from({ length: config.workers }, (_, i) => listening(fork(i), i)))) as [Listening];
  } catch (err) {
    stopping = true;
    await stopAll();
    throw err;
  }

  cluster.on('exit', (w, code, signal) => {
    const index = [...workers.entries()].find(([, x]) => x === w)?.[0];
    if (index === undefined || stopping) return;
    if (code !== 0 || signal) exitCode = 1;
    const now = Date.now();
    const recent = (restarts.get(index) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
    if (recent.length >= MAX_RESTARTS) {
      log.fatal({ worker: index, code, signal }, `worker ${index} died ${MAX_RESTARTS} times within a minute; stopping the gateway. Its log lines above say why`);
      stop('worker failure');
      return;
    }
    recent.push(now);
    restarts.set(index, recent);
    log.error({ worker: index, code, signal }, `worker ${index} died; its devices reconnect to the other workers, and it restarts in 1 s`);
    setTimeout(() => {
      if (stopping) return;
      listening(fork(index), index).catch((err: Error) => log.error({ worker: index, err: err.message }, 'a restarted worker failed to start'));
    }, 1000).unref();
  });

  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ why, workers: workers.size }, 'stopping the workers');
    void stopAll().then(() => resolveStopped(exitCode));
  };
  return { stopped, stop, url: first.url, mqttUrl: first.mqttUrl, operatorToken };
}
