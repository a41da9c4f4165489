/**
 * A real InfluxDB 1.x (`influxd`, Debian package `influxdb`) on free 127.0.0.1 ports in a temp
 * folder, for storage tests (simulator/services launches it). Stopped by its PID; pause()/resume()
 * freeze it (SIGSTOP/SIGCONT) to play a hung database, kill() + restart() play a crash on the same
 * port and data.
 */
import { request } from 'node:http';
import { startInfluxd as launch } from '../../simulator/services/index.js';
import { requireProgram } from './services.js';

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
  const svc = await launch({ auth: options.auth === true, tempPrefix: 'gw-test-' });
  const port = svc.port;
  const admin = options.auth ? `${INFLUXD_ADMIN.username}:${INFLUXD_ADMIN.password}` : undefined;
  if (options.auth) {
    // With no user yet, InfluxDB 1.x lets anyone create the first admin.
    const q = new URLSearchParams({ q: `CREATE USER "${INFLUXD_ADMIN.username}" WITH PASSWORD '${INFLUXD_ADMIN.password}' WITH ALL PRIVILEGES` });
    const r = await httpCall(port, 'POST', `/query?${q}`);
    if (r.status !== 200) {
      await svc.destroy();
      throw new Error(`could not create the influxd admin user: ${r.status} ${r.body}`);
    }
  }
  return {
    port,
    url: svc.url,
    dir: svc.dir,
    get pid() {
      return svc.pid;
    },
    pause: () => svc.pause(),
    resume: () => svc.resume(),
    kill: () => svc.kill(),
    restart: () => svc.restart(),
    stop: () => svc.stop(),
    destroy: () => svc.destroy(),
    query: async (q, db) => {
      const params = new URLSearchParams({ q, epoch: 'ms' });
      if (db) params.set('db', db);
      const r = await httpCall(port, 'POST', `/query?${params}`, undefined, 10_000, admin);
      if (r.status !== 200) throw new Error(`query ${q} → ${r.status} ${r.body}`);
      return JSON.parse(r.body);
    },
    writeRaw: (db, body, rp) => httpCall(port, 'POST', `/write?db=${encodeURIComponent(db)}&precision=ms${rp ? `&rp=${encodeURIComponent(rp)}` : ''}`, body, 10_000, admin),
    output: () => svc.output(),
  };
}
