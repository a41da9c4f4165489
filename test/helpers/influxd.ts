/**
 * A real InfluxDB 1.x (`influxd`, Debian package `influxdb`) on free 127.0.0.1 ports in a temp
 * folder, for storage tests. Stopped by its PID; pause()/resume() freeze it (SIGSTOP/SIGCONT) to play
 * a hung database, kill() + restart() play a crash on the same port and data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { influxConf } from '../../simulator/bench/services.js';
import { tempDir } from './gateway.js';
import { freePort } from './ports.js';
import { requireProgram } from './services.js';
import { waitFor } from './wait.js';

export const influxdPath = (): string | undefined => requireProgram('influxd', 'influxdb');

export interface Influxd {
  /** HTTP port on 127.0.0.1. */
  port: number;
  /** http://127.0.0.1:port */
  url: string;
  dir: string;
  readonly pid: number | undefined;
  /** Freezes the process (SIGSTOP): connections open, nothing answers. */
  pause(): void;
  resume(): void;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** Starts again on the same ports and data (after kill() or stop()). */
  restart(): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s), waits for the exit. Leaves the data for restart(). */
  stop(): Promise<void>;
  /** stop() and remove the temp folder. */
  destroy(): Promise<void>;
  /** Runs an InfluxQL statement over plain HTTP (no client library), returns the parsed JSON. */
  query(q: string, db?: string): Promise<any>;
  /** POSTs line protocol as is (to retention policy `rp` when given); resolves with the status and body. */
  writeRaw(db: string, body: string, rp?: string): Promise<{ status: number; body: string }>;
  /** Everything influxd printed (for failure messages). */
  output(): string;
}

export interface InfluxdOptions {
  /** auth-enabled = true, with an admin user `admin`/`admin` that the helper's own calls use. */
  auth?: boolean;
}

export const INFLUXD_ADMIN = { username: 'admin', password: 'admin' };

function httpCall(port: number, method: string, path: string, body?: string, timeoutMs = 10_000, auth?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'text/plain' };
    if (auth) headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export async function startInfluxd(options: InfluxdOptions = {}): Promise<Influxd> {
  const bin = influxdPath();
  if (!bin) throw new Error('influxd is not installed (apt-get install -y influxdb)');
  const dir = tempDir('influxd-');
  const port = await freePort();
  let rpcPort = await freePort();
  while (rpcPort === port) rpcPort = await freePort();
  const confPath = join(dir, 'influxdb.conf');
  writeFileSync(confPath, influxConf(dir, port, rpcPort, options.auth === true));
  const admin = options.auth ? `${INFLUXD_ADMIN.username}:${INFLUXD_ADMIN.password}` : undefined;
  let out = '';
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const p = spawn(bin, ['run', '-config', confPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INFLUXDB_REPORTING_DISABLED: 'true' } });
    proc = p;
    p.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
    p.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
    exited = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      await waitFor(
        async () => {
          if (p.exitCode !== null || p.signalCode !== null) throw new Error(`influxd exited (${p.exitCode ?? p.signalCode}): ${out}`);
          const r = await httpCall(port, 'GET', '/ping', undefined, 1000).catch(() => undefined);
          return r?.status === 204;
        },
        'influxd to answer /ping',
        20_000,
        50,
      );
    } catch (err) {
      p.kill('SIGKILL');
      await exited;
      throw err;
    }
  };

  const alive = (): boolean => proc !== undefined && proc.exitCode === null && proc.signalCode === null;

  const stop = async (): Promise<void> => {
    const p = proc;
    if (!p || !alive()) return;
    p.kill('SIGCONT'); // a paused process cannot act on SIGTERM
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };

  await launch();
  if (options.auth) {
    // With no user yet, InfluxDB 1.x lets anyone create the first admin.
    const q = new URLSearchParams({ q: `CREATE USER "${INFLUXD_ADMIN.username}" WITH PASSWORD '${INFLUXD_ADMIN.password}' WITH ALL PRIVILEGES` });
    const r = await httpCall(port, 'POST', `/query?${q}`);
    if (r.status !== 200) throw new Error(`could not create the influxd admin user: ${r.status} ${r.body}`);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    get pid() {
      return proc?.pid;
    },
    pause: () => {
      if (alive()) proc!.kill('SIGSTOP');
    },
    resume: () => {
      if (alive()) proc!.kill('SIGCONT');
    },
    kill: async () => {
      if (alive()) proc!.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      if (alive()) throw new Error('influxd is still running: kill() or stop() it first');
      await launch();
    },
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    query: async (q, db) => {
      const params = new URLSearchParams({ q, epoch: 'ms' });
      if (db) params.set('db', db);
      const r = await httpCall(port, 'POST', `/query?${params}`, undefined, 10_000, admin);
      if (r.status !== 200) throw new Error(`query ${q} → ${r.status} ${r.body}`);
      return JSON.parse(r.body);
    },
    writeRaw: (db, body, rp) => httpCall(port, 'POST', `/write?db=${encodeURIComponent(db)}&precision=ms${rp ? `&rp=${encodeURIComponent(rp)}` : ''}`, body, 10_000, admin),
    output: () => out,
  };
}
