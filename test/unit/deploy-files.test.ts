/**
 * The deployment files (Dockerfile, compose.yaml, deploy/): no Docker engine or Grafana runs here,
 * so this checks what can be checked without them: JSON parses, the example config goes through
 * the gateway's own loader, every file the Dockerfile copies and compose.yaml mounts exists and
 * reaches the build context, queries name the schema the gateway writes, and systemd accepts the unit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/config.js';
import { STORAGE_DEFAULTS } from '../../gateway/storage/defaults.js';
import { requireProgram } from '../helpers/services.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('deploy/gateway.config.json', () => {
  it('loads through the config loader with the settings the unit and the image expect', () => {
    const { config } = parseConfig(['--config', join(ROOT, 'deploy/gateway.config.json')], {});
    expect(config.port).toBe(8080);
    expect(config.mqttPort).toBe(1883);
    expect(config.dataDir).toBe('/var/lib/telemetry-gateway');
    expect(config.influx).toBe('http://127.0.0.1:8086/telemetry');
    expect(config.influxRetentionPolicy).toBe(STORAGE_DEFAULTS.retentionPolicy);
    expect(config.logFormat).toBe('json');
  });

  it('gets its secrets from the environment (the unit\'s EnvironmentFile), which beats the file', () => {
    const { config } = parseConfig(['--config', join(ROOT, 'deploy/gateway.config.json')], { GATEWAY_FLEET_KEY: 'k', GATEWAY_OPERATOR_TOKEN: 't', GATEWAY_PORT: '9000' });
    expect([config.fleetKey, config.operatorToken, config.port]).toEqual(['k', 't', 9000]);
    const env = read('deploy/gateway.env.example');
    expect(env).toMatch(/^GATEWAY_FLEET_KEY=/m);
    expect(env).toMatch(/^GATEWAY_OPERATOR_TOKEN=/m);
  });
});

describe('deploy/gateway.service', () => {
  const unit = read('deploy/gateway.service');

  it('runs the installed command with the example config, its state in the config\'s data folder', () => {
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/gateway --config \/etc\/telemetry-gateway\/config\.json$/m);
    expect(unit).toMatch(/^StateDirectory=telemetry-gateway$/m);
    const { config } = parseConfig(['--config', join(ROOT, 'deploy/gateway.config.json')], {});
    expect(config.dataDir).toBe('/var/lib/telemetry-gateway');
    // A bad setting exits 2 (gateway/cli.ts): systemd must not restart it in a loop.
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
  });

  it.skipIf(!requireProgram('systemd-analyze', 'systemd'))('passes systemd-analyze verify (ExecStart pointed at a program that exists here)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'unit-'));
    const copy = join(dir, 'telemetry-gateway.service');
    writeFileSync(copy, unit.replace('ExecStart=/usr/local/bin/gateway', `ExecStart=${process.execPath} ${join(ROOT, 'bin/gateway.js')}`).replace('EnvironmentFile=', 'EnvironmentFile=-'));
    // Unknown keys and bad values are warnings on stderr with exit code 0: both must be empty.
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: '' });
  });
});

describe('Dockerfile and compose.yaml', () => {
  const dockerfile = read('Dockerfile');
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('builds on Node 20 bookworm-slim in two stages and runs as a user, not root', () => {
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(froms).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/gateway\.js"\]$/m);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(ignored.some((pattern) => src === pattern || src.startsWith(pattern + '/')), `${src} is in .dockerignore`).toBe(false);
    }
    // What the runtime stage takes from the build stage is what the package ships.
    for (const built of ['/src/dist', '/src/dashboard/dist']) expect(dockerfile).toContain(`COPY --from=build ${built} `);
  });

  it('compose.yaml mounts only files that exist, with InfluxDB 1.8 and Mosquitto in the cluster profile', () => {
    const compose = read('compose.yaml');
    const mounts = [...compose.matchAll(/- (\.\/[^:]+):/g)].map((m) => m[1]!);
    expect(mounts.length).toBeGreaterThanOrEqual(3);
    for (const m of mounts) expect(existsSync(join(ROOT, m)), m).toBe(true);
    expect(compose).toMatch(/image: influxdb:1\.8$/m);
    expect(compose).toMatch(/image: eclipse-mosquitto:2/m);
    expect(compose).toContain('GATEWAY_INFLUX: http://influxdb:8086/telemetry');
    expect(compose).toContain('GATEWAY_MQTT_URL: mqtt://mosquitto:1883');
  });
});

describe('deploy/grafana', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/telemetry-gateway.json'));
  const datasource = read('deploy/grafana/provisioning/datasources/telemetry-influxdb.yaml');
  const uid = /^\s+uid: (\S+)$/m.exec(datasource)?.[1];

  it('the datasource points at the database compose.yaml gives the gateway', () => {
    expect(datasource).toMatch(/^\s+url: http:\/\/influxdb:8086$/m);
    expect(datasource).toMatch(/^\s+dbName: telemetry$/m);
    expect(uid).toBeDefined();
  });

  it('every query reads the gateway\'s retention policy and measurement through the provisioned datasource', () => {
    const queries: string[] = [];
    for (const v of dashboard.templating.list) {
      expect(v.datasource.uid).toBe(uid);
      queries.push(v.query);
    }
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid).toBe(uid);
      for (const t of panel.targets) {
        expect(t.datasource.uid).toBe(uid);
        queries.push(t.query);
      }
    }
    expect(queries.length).toBeGreaterThanOrEqual(4);
    for (const q of queries) expect(q).toContain(`FROM "${STORAGE_DEFAULTS.retentionPolicy}"."telemetry"`);
  });
});
