/**
 * A throwaway InfluxDB 1.x (`influxd`, Debian package `influxdb`) on free 127.0.0.1 ports in its
 * own temp folder, never the system service: what the storage tests and the bench's storage rows
 * run against. pause()/resume() freeze it (SIGSTOP/SIGCONT) to play a hung database; kill() and
 * restart() play a crash on the same ports and data.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePorts } from './ports.js';
import { ServiceProcess, waitUntil } from './process.js';
import { findProgram, tempDir } from './programs.js';

/** influxd's config for a throwaway instance on 127.0.0.1 (`auth`: auth-enabled, users must be created). */
export function influxConf(dir: string, httpPort: number, rpcPort: number, auth = false): string {
  // Debian's build names the usage-report switch `reporting-enabled`, upstream 1.x `reporting-disabled`.
  // Unknown keys are ignored, so both are set.
  return `reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = ${auth}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
`;
}

export interface InfluxdOptions {
  /** auth-enabled = true: with no user yet, InfluxDB 1.x lets anyone create the first admin. */
  auth?: boolean;
  /** CPU core to pin it to (the bench's server core). */
  core?: number;
  /** Prefix of its temp folder's name. */
  tempPrefix?: string;
  /** How long it may take to answer /ping, at start and restart (default 20 s). */
  readyTimeoutMs?: number;
}

/** The status of a GET on 127.0.0.1 (0 when nothing answered within timeoutMs). */
function getStatus(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

export class InfluxdService {
  readonly url: string;
  readonly confPath: string;
  private current: ServiceProcess | undefined;
  /** Output of earlier runs (before a restart). */
  private earlier = '';

  private constructor(
    readonly bin: string,
    readonly port: number,
    readonly rpcPort: number,
    readonly dir: string,
    private readonly opts: InfluxdOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.confPath = join(dir, 'influxdb.conf');
    writeFileSync(this.confPath, influxConf(dir, port, rpcPort, opts.auth === true));
  }

  /** Starts influxd and waits for it to answer /ping; removes its folder when it does not. */
  static async start(o: InfluxdOptions = {}): Promise<InfluxdService> {
    const bin = findProgram('influxd');
    if (!bin) throw new Error('influxd is not installed (Debian package influxdb: apt-get install -y influxdb)');
    const [port, rpcPort] = await freePorts();
    const s = new InfluxdService(bin, port, rpcPort, tempDir(`${o.tempPrefix ?? 'svc-'}influxd-`), o);
    try {
      await s.launch();
    } catch (err) {
      rmSync(s.dir, { recursive: true, force: true });
      throw err;
    }
    return s;
  }

  get pid(): number | undefined {
    return this.current?.alive ? this.current.pid : undefined;
  }

  get alive(): boolean {
    return this.current?.alive === true;
  }

  private async launch(): Promise<void> {
    if (this.current) this.earlier = (this.earlier + this.current.output()).slice(-20_000);
    const p = new ServiceProcess('influxd', this.bin, ['run', '-config', this.confPath], { core: this.opts.core, env: { INFLUXDB_REPORTING_DISABLED: 'true' } });
    this.current = p;
    try {
      await waitUntil(p, async () => (await getStatus(this.port, '/ping', 1000)) === 204, 'answer to /ping', this.opts.readyTimeoutMs ?? 20_000);
    } catch (err) {
      await p.kill();
      throw err;
    }
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.current?.signal('SIGSTOP');
  }

  resume(): void {
    this.current?.signal('SIGCONT');
  }

  /** SIGKILL, then waits for the exit. */
  async kill(): Promise<void> {
    await this.current?.kill();
  }

  /** Starts again on the same ports and data (after kill() or stop()). */
  async restart(): Promise<void> {
    if (this.alive) throw new Error('influxd is still running: kill() or stop() it first');
    await this.launch();
  }

  /** SIGTERM (SIGKILL after graceMs), waits for the exit. Leaves the data for restart(). */
  async stop(graceMs = 5000): Promise<void> {
    await this.current?.stop(graceMs);
  }

  /** stop() and remove the temp folder. */
  async destroy(graceMs = 5000): Promise<void> {
    await this.stop(graceMs);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Everything influxd printed, over restarts (for failure messages). */
  output(): string {
    return (this.earlier + (this.current?.output() ?? '')).slice(-20_000);
  }
}

export const startInfluxd = (o?: InfluxdOptions): Promise<InfluxdService> => InfluxdService.start(o);
