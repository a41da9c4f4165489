/**
 * Every setting in one table: flag, env var, default, one line of doc. Precedence:
 * flags > environment > config file (--config, JSON) > defaults. Validated at start; errors name
 * the flag and the env var.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { readTypesFile } from './types/types-file.js';
import { STORAGE_DEFAULTS as SD } from './storage/defaults.js';

type Kind = 'string' | 'int' | 'bool' | 'enum';
interface Spec {
  flag: string;
  env: string;
  kind: Kind;
  default: string | number | boolean | undefined;
  doc: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  secret?: boolean;
}

const SPECS = {
  host: { flag: 'host', env: 'GATEWAY_HOST', kind: 'string', default: '0.0.0.0', doc: 'address to listen on (0.0.0.0 = every interface)' },
  port: { flag: 'port', env: 'GATEWAY_PORT', kind: 'int', default: 8080, min: 0, max: 65535, doc: 'HTTP/WebSocket port (0 = any free port)' },
  cert: { flag: 'cert', env: 'GATEWAY_CERT', kind: 'string', default: undefined, doc: 'TLS certificate (PEM file): HTTP/WebSocket become https:// and wss://, MQTT becomes mqtts://' },
  key: { flag: 'key', env: 'GATEWAY_KEY', kind: 'string', default: undefined, secret: true, doc: 'TLS private key (PEM file) for --cert' },
  plaintextPort: { flag: 'plaintext-port', env: 'GATEWAY_PLAINTEXT_PORT', kind: 'int', default: 0, min: 0, max: 65535, doc: 'with --cert: also serve plain HTTP/WebSocket on this port (0 = no plaintext)' },
  mqttPlaintextPort: { flag: 'mqtt-plaintext-port', env: 'GATEWAY_MQTT_PLAINTEXT_PORT', kind: 'int', default: 0, min: 0, max: 65535, doc: 'with --cert: also serve plain MQTT on this port (0 = no plaintext)' },
  mqttPort: { flag: 'mqtt-port', env: 'GATEWAY_MQTT_PORT', kind: 'int', default: 1883, min: 0, max: 65535, doc: 'embedded MQTT broker port on --host (0 = no embedded broker)' },
  mqttDrainTimeout: { flag: 'mqtt-drain-timeout', env: 'GATEWAY_MQTT_DRAIN_TIMEOUT', kind: 'int', default: 10000, min: 100, max: 600000, doc: 'ms an MQTT device may leave its socket full before it is disconnected' },
  mqttMaxQueued: { flag: 'mqtt-max-queued', env: 'GATEWAY_MQTT_MAX_QUEUED', kind: 'int', default: 1000, min: 1, max: 1000000, doc: "QoS 1 messages the embedded broker queues per offline persistent session (an $operator integration's alarms/… with clean=false); newer ones are dropped and counted, like Mosquitto's max_queued_messages" },
  mqttUrl: { flag: 'mqtt-url', env: 'GATEWAY_MQTT_URL', kind: 'string', default: undefined, doc: 'bridge mode: mqtt://host:port of an external broker (MQTT 5) to take telemetry from instead of embedding one' },
  mqttUsername: { flag: 'mqtt-username', env: 'GATEWAY_MQTT_USERNAME', kind: 'string', default: undefined, doc: 'bridge mode: username at the external broker' },
  mqttPassword: { flag: 'mqtt-password', env: 'GATEWAY_MQTT_PASSWORD', kind: 'string', default: undefined, secret: true, doc: 'bridge mode: password at the external broker' },
  mqttCa: { flag: 'mqtt-ca', env: 'GATEWAY_MQTT_CA', kind: 'string', default: undefined, doc: 'bridge mode: CA certificate (PEM file) to trust for an mqtts:// broker with a private CA' },
  mqttShareGroup: { flag: 'mqtt-share-group', env: 'GATEWAY_MQTT_SHARE_GROUP', kind: 'string', default: 'telemetry-gateway', doc: 'bridge mode: shared subscription group; gateways in one group split the telemetry and form one cluster' },
  clusterUrl: { flag: 'cluster-url', env: 'GATEWAY_CLUSTER_URL', kind: 'string', default: undefined, secret: true, doc: 'mqtt://[user:password@]host:port of the broker the cluster\'s instances share state through (default: --mqtt-url in bridge mode; unset and no bridge: not clustered)' },
  clusterSummaryMs: { flag: 'cluster-summary-ms', env: 'GATEWAY_CLUSTER_SUMMARY_MS', kind: 'int', default: 1000, min: 50, max: 60000, doc: 'in a cluster: each instance tells the others its devices\' counters and last values at most this often (how stale another instance\'s fleet view may be)' },
  instanceId: { flag: 'instance-id', env: 'GATEWAY_INSTANCE_ID', kind: 'string', default: undefined, doc: 'this instance\'s name in the cluster, [A-Za-z0-9._-] (default: host name and process id)' },
  workers: { flag: 'workers', env: 'GATEWAY_WORKERS', kind: 'int', default: 1, min: 1, max: 64, doc: 'gateway processes sharing the ports on this machine (SO_REUSEPORT), one cluster, each owning the devices connected to it; use it when one process keeps its core busy, up to one per core left after the broker, database and kernel (on 2 cores it gains little)' },
  types: { flag: 'types', env: 'GATEWAY_TYPES', kind: 'string', default: undefined, doc: 'device types file (JSON: channels, units, commands and their argument schemas), hot-reloaded on change (default: the built-in demo types, devices/types/demo.json)' },
  registry: { flag: 'registry', env: 'GATEWAY_REGISTRY', kind: 'string', default: undefined, doc: 'device registry JSON file (ids, sha256 token hashes, types, labels): the initial import; changes made through the API (in --data-dir) win' },
  fleetKey: { flag: 'fleet-key', env: 'GATEWAY_FLEET_KEY', kind: 'string', default: undefined, secret: true, doc: 'fleet key: any device whose token is hex HMAC-SHA256(fleetKey, deviceId) may connect' },
  operatorToken: { flag: 'operator-token', env: 'GATEWAY_OPERATOR_TOKEN', kind: 'string', default: undefined, secret: true, doc: 'token for the dashboard and /api (generated and printed at start when unset)' },
  sessionIdle: { flag: 'session-idle', env: 'GATEWAY_SESSION_IDLE', kind: 'int', default: 43200, min: 60, max: 604800, doc: 'seconds a dashboard login lasts unused (an open dashboard keeps it alive); 7 days after login it ends anyway' },
  dataDir: { flag: 'data-dir', env: 'GATEWAY_DATA_DIR', kind: 'string', default: '.data', doc: 'folder for state that survives restarts (dedupe cursors)' },
  maxFrameBytes: { flag: 'max-frame-bytes', env: 'GATEWAY_MAX_FRAME_BYTES', kind: 'int', default: 65536, min: 64, max: 16 * 1024 * 1024, doc: 'largest device frame accepted; larger gets FRAME_TOO_LARGE and close 4401' },
  maxReadings: { flag: 'max-readings', env: 'GATEWAY_MAX_READINGS', kind: 'int', default: 1024, min: 1, max: 65535, doc: 'most readings in one frame; more gets TOO_MANY_READINGS and close 4402' },
  httpTelemetryRate: { flag: 'http-telemetry-rate', env: 'GATEWAY_HTTP_TELEMETRY_RATE', kind: 'int', default: 100, min: 0, max: 1_000_000, doc: 'JSON telemetry over HTTP: requests per second one device may make (bursts of as many); more get 429 RATE_LIMITED with Retry-After; 0 = no limit' },
  maxDevices: { flag: 'max-devices', env: 'GATEWAY_MAX_DEVICES', kind: 'int', default: 100000, min: 1, max: 10_000_000, doc: 'most devices connected at once; more are refused with HTTP 503' },
  duplicateId: { flag: 'duplicate-id', env: 'GATEWAY_DUPLICATE_ID', kind: 'enum', default: 'replace', choices: ['replace', 'reject'], doc: 'a device id connecting while already connected: replace (old one closed with 4409) or reject (new one gets HTTP 409)' },
  idleTimeout: { flag: 'idle-timeout', env: 'GATEWAY_IDLE_TIMEOUT', kind: 'int', default: 60, min: 8, max: 960, doc: 'seconds of silence before a device is pinged and then dropped as offline (uWS rounds to 4 s)' },
  ackInterval: { flag: 'ack-interval', env: 'GATEWAY_ACK_INTERVAL', kind: 'int', default: 50, min: 1, max: 10000, doc: 'ms between cumulative acks to one device (at most one ack per interval)' },
  ackMaxDelay: { flag: 'ack-max-delay', env: 'GATEWAY_ACK_MAX_DELAY', kind: 'int', default: 2000, min: 0, max: 60000, doc: 'under load (over 100 acks due per interval), a slow sender\'s ack waits until it covers 8 frames or this many ms; 0: never stretch' },
  deviceSendBudget: { flag: 'device-send-budget', env: 'GATEWAY_DEVICE_SEND_BUDGET', kind: 'int', default: 256 * 1024, min: 1024, max: 64 * 1024 * 1024, doc: 'bytes the gateway buffers toward one device; over it, sends wait or are dropped (never unbounded)' },
  influx: { flag: 'influx', env: 'GATEWAY_INFLUX', kind: 'string', default: undefined, secret: true, doc: 'InfluxDB 1.x URL http://[user:password@]host:8086/<database> (unset: in-memory storage)' },
  influxRetentionPolicy: { flag: 'influx-retention-policy', env: 'GATEWAY_INFLUX_RETENTION_POLICY', kind: 'string', default: SD.retentionPolicy, doc: 'retention policy written to; created when missing, never altered' },
  influxRetention: { flag: 'influx-retention', env: 'GATEWAY_INFLUX_RETENTION', kind: 'string', default: SD.retention, doc: "that policy's duration when created (InfluxQL duration, or INF)" },
  storageBufferPoints: { flag: 'storage-buffer-points', env: 'GATEWAY_STORAGE_BUFFER_POINTS', kind: 'int', default: SD.bufferPoints, min: 100, max: 100_000_000, doc: 'points that may wait in memory for InfluxDB before batches go to the spill file; twice this with the spill full, and frames are refused (STORAGE_FULL)' },
  spillMaxBytes: { flag: 'spill-max-bytes', env: 'GATEWAY_SPILL_MAX_BYTES', kind: 'int', default: SD.spillMaxBytes, min: 65536, max: 1_099_511_627_776, doc: 'bound of <data-dir>/spill/; when reached, new points wait in memory, then frames are refused (STORAGE_FULL), never dropped' },
  influxBatchPoints: { flag: 'influx-batch-points', env: 'GATEWAY_INFLUX_BATCH_POINTS', kind: 'int', default: SD.batchPoints, min: 1, max: 1_000_000, doc: 'points per InfluxDB write request' },
  influxFlushMs: { flag: 'influx-flush-ms', env: 'GATEWAY_INFLUX_FLUSH_MS', kind: 'int', default: SD.flushMs, min: 1, max: 60000, doc: 'a partial batch is written at least this often' },
  memoryPoints: { flag: 'memory-points', env: 'GATEWAY_MEMORY_POINTS', kind: 'int', default: 10000, min: 10, max: 10_000_000, doc: 'in-memory history: points kept per device and channel (oldest dropped first)' },
  commandQueue: { flag: 'command-queue', env: 'GATEWAY_COMMAND_QUEUE', kind: 'int', default: 100, min: 1, max: 100000, doc: 'most unfinished commands per device; more get HTTP 429 COMMAND_QUEUE_FULL' },
  commandMaxArgsBytes: { flag: 'command-max-args-bytes', env: 'GATEWAY_COMMAND_MAX_ARGS_BYTES', kind: 'int', default: 8192, min: 16, max: 60000, doc: 'largest command args as JSON; more gets HTTP 413 COMMAND_TOO_LARGE' },
  commandTtl: { flag: 'command-ttl', env: 'GATEWAY_COMMAND_TTL', kind: 'int', default: 300000, min: 1, max: 604800000, doc: 'default ms a command may wait for delivery before it expires' },
  commandTimeout: { flag: 'command-timeout', env: 'GATEWAY_COMMAND_TIMEOUT', kind: 'int', default: 30000, min: 100, max: 86400000, doc: 'default ms from sending a command to its result before it times out' },
  liveFlushMs: { flag: 'live-flush-ms', env: 'GATEWAY_LIVE_FLUSH_MS', kind: 'int', default: 100, min: 10, max: 10000, doc: 'live updates to dashboards are coalesced into one message per stream every this many ms' },
  liveMaxPoints: { flag: 'live-max-points', env: 'GATEWAY_LIVE_MAX_POINTS', kind: 'int', default: 2, min: 2, max: 10000, doc: 'points per channel per live message; more are reduced to the interval\'s min and max' },
  liveReplay: { flag: 'live-replay', env: 'GATEWAY_LIVE_REPLAY', kind: 'int', default: 600, min: 1, max: 100000, doc: 'live messages kept per watched device for gap-free resume' },
  liveReplayBytes: { flag: 'live-replay-bytes', env: 'GATEWAY_LIVE_REPLAY_BYTES', kind: 'int', default: 67108864, min: 65536, max: 17179869184, doc: 'about the most bytes of live messages kept for resume over all watched devices; with many watched, each keeps fewer (at least 10)' },
  liveBudget: { flag: 'live-budget', env: 'GATEWAY_LIVE_BUDGET', kind: 'int', default: 1048576, min: 4096, max: 268435456, doc: 'bytes a dashboard client may have waiting; over it, it misses updates and is told how many' },
  alarmWebhook: { flag: 'alarm-webhook', env: 'GATEWAY_ALARM_WEBHOOK', kind: 'string', default: undefined, secret: true, doc: 'URL every alarm change is POSTed to as JSON (README "Alarms"; retried with backoff, 6 tries over about 2 minutes)' },
  alarmKeepCleared: { flag: 'alarm-keep-cleared', env: 'GATEWAY_ALARM_KEEP_CLEARED', kind: 'int', default: 10000, min: 10, max: 1_000_000, doc: 'cleared alarms kept for the API and the data folder (the oldest are forgotten first); open ones are always kept' },
  dashboardDir: { flag: 'dashboard-dir', env: 'GATEWAY_DASHBOARD_DIR', kind: 'string', default: undefined, doc: 'built dashboard to serve at / (default: dashboard/dist of this checkout)' },
  logLevel: { flag: 'log-level', env: 'GATEWAY_LOG_LEVEL', kind: 'enum', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], doc: 'log level (logs go to stderr)' },
  logFormat: { flag: 'log-format', env: 'GATEWAY_LOG_FORMAT', kind: 'enum', default: 'auto', choices: ['auto', 'json', 'pretty'], doc: 'log lines: JSON, or readable (auto: readable when stderr is a terminal)' },
  allowUwsFallback: { flag: 'allow-uws-fallback', env: 'GATEWAY_ALLOW_UWS_FALLBACK', kind: 'bool', default: false, doc: 'start even when uWebSockets.js falls back to its slow ws shim' },
} as const satisfies Record<string, Spec>;

type Specs = typeof SPECS;
type ValueOf<S extends Spec> = S['kind'] extends 'int' ? number : S['kind'] extends 'bool' ? boolean : string;
export type GatewayConfig = {
  [K in keyof Specs]: Specs[K]['default'] extends undefined ? ValueOf<Specs[K]> | undefined : ValueOf<Specs[K]>;
};

/** The defaults, for programmatic use (tests, embedding). */
export function defaultConfig(): GatewayConfig {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SPECS)) out[key] = spec.default;
  return out as GatewayConfig;
}

function coerce(key: string, spec: Spec, raw: unknown, source: string): string | number | boolean {
  const where = `${source} (--${spec.flag} / ${spec.env})`;
  switch (spec.kind) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw).trim()) ? Number(String(raw).trim()) : NaN;
      if (!Number.isInteger(n)) throw new ConfigError(`${where}: "${String(raw)}" is not a whole number`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`${where}: ${n} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError(`${where}: ${n} is above the maximum ${spec.max}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on', ''].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      throw new ConfigError(`${where}: "${String(raw)}" is not true or false`);
    }
    case 'enum': {
      const s = String(raw);
      if (!spec.choices!.includes(s)) throw new ConfigError(`${where}: "${s}" is not one of ${spec.choices!.join(', ')}`);
      return s;
    }
    default: {
      if (typeof raw !== 'string' || raw === '') throw new ConfigError(`${where}: needs a non-empty value`);
      void key;
      return raw;
    }
  }
}

/** Parses argv (without node and script), env and the optional config file into a validated config. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { config: GatewayConfig; help: boolean; configFile?: string } {
  const byFlag = new Map<string, [string, Spec]>(Object.entries(SPECS).map(([k, s]) => [s.flag, [k, s]]));
  const fromFlags: Record<string, unknown> = {};
  let help = false;
  let configFile = env.GATEWAY_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}" (flags start with --; see --help)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    if (name === 'config') {
      configFile = inline ?? argv[++i];
      if (!configFile) throw new ConfigError('--config needs a file path');
      continue;
    }
    const found = byFlag.get(name) ?? (name.startsWith('no-') ? byFlag.get(name.slice(3)) : undefined);
    if (!found) throw new ConfigError(`unknown flag --${name} (see --help)`);
    const [key, spec] = found;
    if (spec.kind === 'bool') {
      fromFlags[key] = name.startsWith('no-') ? false : inline ?? true;
    } else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new ConfigError(`--${name} needs a value`);
      // `--fleet-key --port 18095` would take "--port" as the key: a forgotten value, not a key.
      if (inline === undefined && value.startsWith('--')) {
        throw new ConfigError(`--${name} needs a value, got the flag ${value} (a value that starts with -- is written --${name}=${value})`);
      }
      fromFlags[key] = value;
    }
  }
  let fromFile: Record<string, unknown> = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`config file ${configFile} could not be read: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${configFile} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) throw new ConfigError(`config file ${configFile} must hold a JSON object`);
    for (const k of Object.keys(fromFile)) {
      if (!(k in SPECS)) throw new ConfigError(`config file ${configFile}: unknown setting "${k}" (settings are the flags in camelCase, e.g. "maxFrameBytes")`);
    }
  }
  const config: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SPECS) as [string, Spec][]) {
    let raw: unknown;
    let source: string;
    if (key in fromFlags) [raw, source] = [fromFlags[key], 'flag'];
    else if (env[spec.env] !== undefined) [raw, source] = [env[spec.env], `env ${spec.env}`];
    else if (key in fromFile) [raw, source] = [fromFile[key], `config file setting "${key}"`];
    else {
      config[key] = spec.default;
      continue;
    }
    config[key] = coerce(key, spec, raw, source);
  }
  const c = config as GatewayConfig;
  checkTls(c);
  checkCluster(c);
  checkSources(c);
  return { config: c, help, configFile };
}

/** Settings that only make sense together, and files that must be readable. */
export function checkTls(c: GatewayConfig): void {
  if ((c.cert === undefined) !== (c.key === undefined)) throw new ConfigError('--cert (GATEWAY_CERT) and --key (GATEWAY_KEY) go together: give both or neither');
  if (c.cert === undefined && (c.plaintextPort !== 0 || c.mqttPlaintextPort !== 0)) {
    throw new ConfigError('--plaintext-port and --mqtt-plaintext-port serve plaintext beside TLS: they need --cert and --key');
  }
  for (const [flag, path] of [['--cert', c.cert], ['--key', c.key], ['--mqtt-ca', c.mqttCa]] as const) {
    if (path === undefined) continue;
    try {
      readFileSync(path);
    } catch (err) {
      throw new ConfigError(`${flag} ${path} cannot be read: ${(err as Error).message}`);
    }
  }
}

/** Where devices and storage come from: checked here so a bad one is one line, not a stack trace at start. */
function checkSources(c: GatewayConfig): void {
  if (c.influx !== undefined && !/^https?:\/\//i.test(c.influx)) {
    // The URL may carry a password: only its scheme is shown.
    throw new ConfigError(`--influx (GATEWAY_INFLUX) must be an http:// or https:// URL of InfluxDB 1.x, like http://localhost:8086/telemetry (got a ${/^[a-z][a-z0-9+.-]*:/i.exec(c.influx)?.[0] ?? 'scheme-less'} URL)`);
  }
  if (c.types !== undefined) {
    try {
      readTypesFile(c.types);
    } catch (err) {
      throw new ConfigError(`--types (GATEWAY_TYPES): [${(err as { code?: string }).code}] ${(err as Error).message}`);
    }
  }
  if (c.alarmWebhook !== undefined && !/^https?:\/\/[^\s]+$/.test(c.alarmWebhook)) {
    throw new ConfigError('--alarm-webhook (GATEWAY_ALARM_WEBHOOK) must be an http:// or https:// URL');
  }
  if (c.registry !== undefined) {
    try {
      readFileSync(c.registry);
    } catch (err) {
      throw new ConfigError(`--registry (GATEWAY_REGISTRY) ${c.registry} cannot be read: ${(err as Error).message}`);
    }
  }
}

function checkCluster(c: GatewayConfig): void {
  if (c.instanceId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(c.instanceId)) {
    throw new ConfigError(`--instance-id (GATEWAY_INSTANCE_ID): "${c.instanceId}" must be 1 to 64 of A-Z a-z 0-9 . _ - (it becomes part of MQTT topics)`);
  }
  if (c.clusterUrl !== undefined && !/^mqtts?:\/\//.test(c.clusterUrl)) {
    throw new ConfigError('--cluster-url (GATEWAY_CLUSTER_URL) must be an mqtt:// or mqtts:// URL');
  }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(c.mqttShareGroup)) {
    throw new ConfigError(`--mqtt-share-group (GATEWAY_MQTT_SHARE_GROUP): "${c.mqttShareGroup}" must be 1 to 64 of A-Z a-z 0-9 . _ - (it becomes part of MQTT topics)`);
  }
}

export function helpText(): string {
  const lines = [
    'Usage: gateway [flags]',
    '',
    'Runs the telemetry gateway. Settings come from flags, then environment variables, then a JSON',
    'config file (--config FILE or GATEWAY_CONFIG; keys are the flags in camelCase), then defaults.',
    '',
    '  --config FILE  (GATEWAY_CONFIG)  JSON config file',
  ];
  for (const spec of Object.values(SPECS) as Spec[]) {
    const value = spec.kind === 'bool' ? '' : spec.kind === 'int' ? ' N' : spec.kind === 'enum' ? ` ${spec.choices!.join('|')}` : ' VALUE';
    const def = spec.default === undefined ? (spec.secret ? 'unset' : 'unset') : String(spec.default);
    lines.push(`  --${spec.flag}${value}  (${spec.env}, default: ${def})`);
    lines.push(`      ${spec.doc}`);
  }
  lines.push('  --help  print this help');
  return lines.join('\n');
}
