/**
 * Settings loading: flag > environment > config file > default, each layer for a few settings of
 * each kind, and errors that name the flag, the env var and the layer the bad value came from.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../gateway/errors.js';
import { defaultConfig, parseConfig } from '../../gateway/config.js';
import { tempDir } from '../helpers/gateway.js';

function configFile(settings: Record<string, unknown>): string {
  const path = join(tempDir('gw-config-'), 'gateway.json');
  writeFileSync(path, JSON.stringify(settings));
  return path;
}

const FILE = { port: 1111, ackInterval: 11, duplicateId: 'reject', dataDir: '/from/file', allowUwsFallback: true };
const ENV = { GATEWAY_PORT: '2222', GATEWAY_ACK_INTERVAL: '22', GATEWAY_DUPLICATE_ID: 'replace', GATEWAY_DATA_DIR: '/from/env', GATEWAY_ALLOW_UWS_FALLBACK: 'false' };
const FLAGS = ['--port', '3333', '--ack-interval=33', '--duplicate-id', 'reject', '--data-dir', '/from/flag', '--allow-uws-fallback'];

describe('config layers', () => {
  it('uses the defaults when nothing is set', () => {
    const { config } = parseConfig([], {});
    expect(config).toEqual(defaultConfig());
    expect(config).toMatchObject({ port: 8080, ackInterval: 50, duplicateId: 'replace', dataDir: '.data', allowUwsFallback: false });
  });

  it('takes the config file over the defaults', () => {
    const { config, configFile: used } = parseConfig(['--config', configFile(FILE)], {});
    expect(used).toBeDefined();
    expect(config).toMatchObject(FILE);
    // Settings the file does not name keep their defaults.
    expect(config.memoryPoints).toBe(defaultConfig().memoryPoints);
  });

  it('takes environment variables over the config file and the defaults', () => {
    const { config } = parseConfig(['--config', configFile(FILE)], ENV);
    expect(config).toMatchObject({ port: 2222, ackInterval: 22, duplicateId: 'replace', dataDir: '/from/env', allowUwsFallback: false });
    // An env var alone (no file) beats the default.
    expect(parseConfig([], { GATEWAY_MEMORY_POINTS: '77', GATEWAY_LOG_LEVEL: 'warn' }).config).toMatchObject({ memoryPoints: 77, logLevel: 'warn' });
  });

  it('takes flags over environment variables, the config file and the defaults', () => {
    const { config } = parseConfig([...FLAGS, '--config', configFile(FILE)], ENV);
    expect(config).toMatchObject({ port: 3333, ackInterval: 33, duplicateId: 'reject', dataDir: '/from/flag', allowUwsFallback: true });
    expect(parseConfig(['--no-allow-uws-fallback'], { GATEWAY_ALLOW_UWS_FALLBACK: 'true' }).config.allowUwsFallback).toBe(false);
  });

  it('mixes layers setting by setting', () => {
    const file = configFile({ port: 1111, ackInterval: 11, memoryPoints: 111 });
    const { config } = parseConfig(['--port', '3333'], { GATEWAY_ACK_INTERVAL: '22', GATEWAY_CONFIG: file });
    expect(config).toMatchObject({ port: 3333, ackInterval: 22, memoryPoints: 111, maxFrameBytes: defaultConfig().maxFrameBytes });
  });

  it('names the flag, the env var and the layer of a bad value', () => {
    const bad = (argv: string[], env: NodeJS.ProcessEnv) => {
      try {
        parseConfig(argv, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).code).toBe('CONFIG_INVALID');
        return (err as Error).message;
      }
      throw new Error('no ConfigError');
    };
    expect(bad([], { GATEWAY_PORT: 'eighty' })).toMatch(/env GATEWAY_PORT \(--port \/ GATEWAY_PORT\): "eighty" is not a whole number/);
    expect(bad(['--ack-interval', '0'], {})).toMatch(/flag \(--ack-interval \/ GATEWAY_ACK_INTERVAL\): 0 is below the minimum 1/);
    expect(bad(['--config', configFile({ duplicateId: 'both' })], {})).toMatch(/config file setting "duplicateId".*"both" is not one of replace, reject/);
    expect(bad(['--config', configFile({ portt: 1 })], {})).toMatch(/unknown setting "portt"/);
    expect(bad(['--portt', '1'], {})).toMatch(/unknown flag --portt/);
  });
});

describe('config errors found by a newcomer (issue 16 item 7)', () => {
  it('refuses an --influx URL that is not http(s), naming the flag and hiding the rest of the URL', () => {
    expect(() => parseConfig(['--influx', 'foo://user:secret@bar/db'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--influx', 'foo://user:secret@bar/db'], {})).toThrow(/--influx \(GATEWAY_INFLUX\).*http:\/\/.*got a foo: URL/);
    expect(() => parseConfig(['--influx', 'foo://user:secret@bar/db'], {})).not.toThrow(/secret/);
    expect(parseConfig(['--influx', 'http://127.0.0.1:8086/db'], {}).config.influx).toBe('http://127.0.0.1:8086/db');
  });

  it('refuses a --registry file that cannot be read, naming the flag', () => {
    expect(() => parseConfig(['--registry', '/missing.json'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--registry', '/missing.json'], {})).toThrow(/--registry \(GATEWAY_REGISTRY\) \/missing\.json cannot be read/);
  });

  it('refuses a flag as the value of the flag before it, unless written with =', () => {
    expect(() => parseConfig(['--fleet-key', '--port', '18095'], {})).toThrow(/--fleet-key needs a value, got the flag --port/);
    expect(parseConfig(['--fleet-key=--odd-key', '--port', '18095'], {}).config).toMatchObject({ fleetKey: '--odd-key', port: 18095 });
  });
});
