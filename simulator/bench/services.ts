/**
 * The outside servers some rows compare against: Mosquitto and InfluxDB 1.x, each started on free
 * 127.0.0.1 ports in a temp folder (never the system service), pinned like the other servers, and
 * stopped by PID. Missing binaries make the caller's row "not measured".
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, httpGet, sleep, start, type Child } from './procs.js';

export function which(program: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    const p = join(dir, program);
    if (spawnSync('test', ['-x', p]).status === 0) return p;
  }
  return undefined;
}

export function versionOf(program: string, args: string[], pattern: RegExp): string | undefined {
  const bin = which(program);
  if (!bin) return undefined;
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1];
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `bench-${prefix}-`));
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface Service {
  child: Child;
  port: number;
  /** Its temp folder: remove it after stopping the child. */
  dir: string;
}

export async function startMosquitto(core: number): Promise<Service> {
  const bin = which('mosquitto');
  if (!bin) throw new Error('mosquitto is not installed');
  const dir = tempDir('mosquitto');
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest none', ''].join('\n'));
  const child = start('mosquitto', bin, ['-c', conf], { core });
  for (let i = 0; i < 100; i++) {
    if (!child.alive) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mosquitto exited: ${child.stderrTail}`);
    }
    if (await canConnect(port)) return { child, port, dir };
    await sleep(50);
  }
  await child.stop();
  rmSync(dir, { recursive: true, force: true });
  throw new Error('mosquitto did not listen within 5 s');
}

/** influxd's config for a throwaway instance on 127.0.0.1 (the bench's, and the tests' too). */
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

export async function startInfluxd(core: number): Promise<Service> {
  const bin = which('influxd');
  if (!bin) throw new Error('influxd is not installed');
  const dir = tempDir('influxd');
  const port = await freePort();
  let rpcPort = await freePort();
  while (rpcPort === port) rpcPort = await freePort();
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(conf, influxConf(dir, port, rpcPort));
  const child = start('influxd', bin, ['run', '-config', conf], { core, env: { INFLUXDB_REPORTING_DISABLED: 'true' } });
  for (let i = 0; i < 200; i++) {
    if (!child.alive) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`influxd exited: ${child.stderrTail}`);
    }
    const ok = await httpGet(port, '/ping', {}, 1000).then(
      () => true,
      () => false,
    );
    if (ok) return { child, port, dir };
    await sleep(100);
  }
  await child.stop();
  rmSync(dir, { recursive: true, force: true });
  throw new Error('influxd did not answer /ping within 20 s');
}
