/**
 * Every simulator setting in one table: flag, env var, default, one line of doc. Flags beat
 * environment variables (SIMULATE_*), which beat defaults. Validated up front; an error names the
 * flag and the variable. `simulate --help` prints the table.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DEVICE_ID_PATTERN } from '../devices/device-id.js';
import type { DeviceTypeSpec } from '../devices/device-types.js';
import { describeProblems, parseDeviceTypes } from '../devices/types/parse.js';
import { INCIDENT_LENGTH_S } from './incident.js';
import { isModeledType, MODELED_TYPES } from './models/index.js';

export type TransportName = 'ws' | 'mqtt';

/** An outage window: from `startS` seconds after the start, for `durationS` seconds. */
export interface OutageWindow {
  startS: number;
  durationS: number;
}

export interface SimulatorOptions {
  transport: TransportName;
  /** Gateway base URL: ws://host:port (WebSocket) or mqtt://host:port (the gateway's MQTT broker). */
  url: string;
  /** CA certificate(s), PEM text, trusted for wss:// and mqtts:// beside the system's (--ca FILE). */
  ca: string | undefined;
  fleetKey: string;
  devices: number;
  /** Readings per second per device (one frame per reading round). */
  rate: number;
  /** Seconds to send for; 0 = until stopped (Ctrl-C). */
  durationS: number;
  /** Device types, assigned round-robin. */
  types: string[];
  /** The types of --types-file, when given; without it the simulator's own models' demo types. */
  deviceTypes: DeviceTypeSpec[] | undefined;
  /** Inserted after the type: ids are `<type>-<idPrefix><n, 4 digits>`. */
  idPrefix: string;
  /** The SDK's batchMs: 0 seals each round's readings into a frame at once. */
  batchMs: number;
  /** Worker threads; 0 runs the fleet in the calling thread. */
  workers: number;
  /** New connections per second, whole fleet. */
  connectRate: number;
  /** First connections in flight per fleet (worker); more wait. */
  maxConnecting: number;
  /** Seconds to wait for the last acks after sending stops. */
  drainS: number;
  seed: number;
  faults: boolean;
  json: boolean;
  /** Seconds between plain status lines when stderr is not a TTY (0 = none). */
  statusEveryS: number;
  churn: number;
  duplicate: number;
  reorder: number;
  skewMs: number;
  malformed: number;
  outage: OutageWindow | undefined;
  /** Stage an incident that raises the gateway's default alarms (incident.ts). */
  incident: boolean;
  /** Seconds between incident cycles; 0 = one only. */
  incidentEveryS: number;
  demo: boolean;
}

export class OptionError extends Error {
  override readonly name = 'OptionError';
  readonly code = 'SIMULATE_OPTION_INVALID';
}

type Kind = 'string' | 'int' | 'number' | 'bool' | 'enum' | 'types' | 'window';
interface Spec {
  flag: string;
  env: string;
  kind: Kind;
  /** Shown in --help; `undefined` defaults are explained in the doc. */
  default: string | number | boolean | undefined;
  doc: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  secret?: boolean;
  /** What --help shows as the default when it is not a plain value. */
  shown?: string;
}

const SPECS = {
  transport: { flag: 'transport', env: 'SIMULATE_TRANSPORT', kind: 'enum', default: undefined, shown: "from --url's scheme, else ws", choices: ['ws', 'mqtt'], doc: 'how devices connect: WebSocket binary frames or MQTT' },
  url: { flag: 'url', env: 'SIMULATE_URL', kind: 'string', default: undefined, shown: 'ws://localhost:8080, or mqtt://localhost:1883 with --transport mqtt', doc: 'gateway base URL (ws:// or wss://; mqtt:// or mqtts:// for its MQTT broker)' },
  ca: { flag: 'ca', env: 'SIMULATE_CA', kind: 'string', default: undefined, shown: 'none (the system CAs, plus NODE_EXTRA_CA_CERTS)', doc: 'CA certificate (PEM file) to trust for wss:// and mqtts://, e.g. a private CA or a self-signed gateway certificate' },
  fleetKey: { flag: 'fleet-key', env: 'SIMULATE_FLEET_KEY', kind: 'string', default: undefined, secret: true, shown: 'none, required', doc: "the gateway's fleet key; each device's token is HMAC-SHA256(fleet key, device id)" },
  devices: { flag: 'devices', env: 'SIMULATE_DEVICES', kind: 'int', default: 100, min: 1, max: 1_000_000, doc: 'virtual devices' },
  rate: { flag: 'rate', env: 'SIMULATE_RATE', kind: 'number', default: 1, min: 0.001, max: 1000, doc: 'reading rounds (frames) per second per device' },
  durationS: { flag: 'duration', env: 'SIMULATE_DURATION', kind: 'number', default: 0, min: 0, max: 31_536_000, doc: 'seconds to send for, then drain and print the summary (0 = until Ctrl-C)' },
  types: { flag: 'types', env: 'SIMULATE_TYPES', kind: 'types', default: MODELED_TYPES.join(','), shown: `${MODELED_TYPES.join(',')}, or every type of --types-file`, doc: 'device types, comma-separated, assigned round-robin (a value ending in .json is a types file, as --types-file)' },
  typesFile: { flag: 'types-file', env: 'SIMULATE_TYPES_FILE', kind: 'string', default: undefined, shown: 'none (the demo types)', doc: "a gateway types file (its --types): simulate its types; channels the simulator models keep their models, others get plausible values from their min and max" },
  idPrefix: { flag: 'id-prefix', env: 'SIMULATE_ID_PREFIX', kind: 'string', default: '', doc: 'put after the type in device ids: <type>-<prefix><n, 4 digits> (keeps fleets apart)' },
  batchMs: { flag: 'batch-ms', env: 'SIMULATE_BATCH_MS', kind: 'int', default: 0, min: 0, max: 60_000, doc: "the SDK's batchMs; 0 = each round's readings become one frame at once" },
  workers: { flag: 'workers', env: 'SIMULATE_WORKERS', kind: 'int', default: availableParallelism(), shown: `one per core (${availableParallelism()} here)`, min: 0, max: 256, doc: 'worker threads the devices are split across (0 = the main thread)' },
  connectRate: { flag: 'connect-rate', env: 'SIMULATE_CONNECT_RATE', kind: 'number', default: 1000, min: 1, max: 1_000_000, doc: 'new connections per second (whole fleet), so a big fleet does not storm the gateway' },
  maxConnecting: { flag: 'max-connecting', env: 'SIMULATE_MAX_CONNECTING', kind: 'int', default: undefined, shown: '500 over ws, 50 over mqtt', min: 1, max: 1_000_000, doc: 'first connections in flight per worker; more wait, so a slow gateway slows the ramp instead of piling up attempts that time out and retry' },
  drainS: { flag: 'drain', env: 'SIMULATE_DRAIN', kind: 'number', default: 10, min: 0, max: 3600, doc: 'seconds to wait for the last acks after sending stops' },
  seed: { flag: 'seed', env: 'SIMULATE_SEED', kind: 'int', default: 1, min: 0, max: 0xffffffff, doc: 'seed of the sensor models and chaos decisions (same seed, same readings)' },
  faults: { flag: 'faults', env: 'SIMULATE_FAULTS', kind: 'bool', default: true, doc: 'rare sensor faults: stuck values, dropouts, outliers (--no-faults turns them off)' },
  json: { flag: 'json', env: 'SIMULATE_JSON', kind: 'bool', default: false, doc: 'print the summary as one JSON object on stdout (status lines still go to stderr)' },
  statusEveryS: { flag: 'status-every', env: 'SIMULATE_STATUS_EVERY', kind: 'number', default: 5, min: 0, max: 3600, doc: 'seconds between status lines when stderr is not a terminal (0 = none)' },
  churn: { flag: 'churn', env: 'SIMULATE_CHURN', kind: 'number', default: 0, min: 0, max: 1, doc: 'chaos: chance per device per second of dropping its connection (it reconnects and resends)' },
  duplicate: { flag: 'duplicate', env: 'SIMULATE_DUPLICATE', kind: 'number', default: 0, min: 0, max: 1, doc: 'chaos: chance that a telemetry frame is written twice' },
  reorder: { flag: 'reorder', env: 'SIMULATE_REORDER', kind: 'number', default: 0, min: 0, max: 1, doc: 'chaos: chance that a telemetry frame is held back and written after the next one' },
  skewMs: { flag: 'skew', env: 'SIMULATE_SKEW', kind: 'int', default: 0, min: 0, max: 31_536_000_000, doc: 'chaos: each device clock is off by up to ± this many ms (fixed per device)' },
  malformed: { flag: 'malformed', env: 'SIMULATE_MALFORMED', kind: 'number', default: 0, min: 0, max: 1, doc: 'chaos: chance per frame of also sending a malformed frame, on a separate short-lived connection as chaos-<device id>' },
  outage: { flag: 'outage', env: 'SIMULATE_OUTAGE', kind: 'window', default: undefined, shown: 'none', doc: 'chaos: S:D = at second S every device drops its connection and stays away D seconds (readings queue up)' },
  incident: { flag: 'incident', env: 'SIMULATE_INCIDENT', kind: 'bool', default: false, doc: 'stage an incident the default alarm rules catch within ~30 s: the first climate device overheats, the first vibration monitor alarms, the first power meter falls silent for 75 s' },
  incidentEveryS: { flag: 'incident-every', env: 'SIMULATE_INCIDENT_EVERY', kind: 'number', default: 600, min: 0, max: 86_400, doc: 'seconds after which the --incident schedule starts over (0 = once; else at least the incident\'s 150 s)' },
  demo: { flag: 'demo', env: 'SIMULATE_DEMO', kind: 'bool', default: false, doc: 'a small believable fleet: 24 mixed devices at 1 Hz in this thread, with --incident, until Ctrl-C (flags given too still apply)' },
} as const satisfies Record<string, Spec>;

type Key = keyof typeof SPECS;

/** Presets of --demo (flags given explicitly win). */
export const DEMO_PRESET = { devices: 24, rate: 1, durationS: 0, workers: 0, incident: true } as const;

export const DEFAULT_URLS: Record<TransportName, string> = { ws: 'ws://localhost:8080', mqtt: 'mqtt://localhost:1883' };
/** The embedded MQTT broker (aedes) handles CONNECTs far slower than uWS does upgrades: 1,000 in flight time out there. */
export const DEFAULT_MAX_CONNECTING: Record<TransportName, number> = { ws: 500, mqtt: 50 };

function where(spec: Spec, source: string): string {
  return `${source} (--${spec.flag} / ${spec.env})`;
}

function coerce(spec: Spec, raw: string | boolean, source: string): unknown {
  const at = where(spec, source);
  const s = String(raw).trim();
  switch (spec.kind) {
    case 'int':
    case 'number': {
      const n = spec.kind === 'int' ? (/^-?\d+$/.test(s) ? Number(s) : NaN) : s === '' ? NaN : Number(s);
      if (!Number.isFinite(n)) throw new OptionError(`${at}: "${s}" is not ${spec.kind === 'int' ? 'a whole number' : 'a number'}`);
      if (spec.min !== undefined && n < spec.min) throw new OptionError(`${at}: ${n} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new OptionError(`${at}: ${n} is above the maximum ${spec.max}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (['1', 'true', 'yes', 'on', ''].includes(s.toLowerCase())) return true;
      if (['0', 'false', 'no', 'off'].includes(s.toLowerCase())) return false;
      throw new OptionError(`${at}: "${s}" is not true or false`);
    }
    case 'enum':
      if (!spec.choices!.includes(s)) throw new OptionError(`${at}: "${s}" is not one of ${spec.choices!.join(', ')}`);
      return s;
    case 'types': {
      // Which names are types is known once --types-file is read (finish()).
      const list = s.split(',').map((t) => t.trim()).filter((t) => t !== '');
      if (list.length === 0) throw new OptionError(`${at}: needs at least one type (${MODELED_TYPES.join(', ')})`);
      return list;
    }
    case 'window': {
      const m = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(s);
      if (!m || Number(m[2]) <= 0) throw new OptionError(`${at}: "${s}" is not START:SECONDS, e.g. 30:10 (from second 30, for 10 seconds)`);
      return { startS: Number(m[1]), durationS: Number(m[2]) } satisfies OutageWindow;
    }
    default:
      return typeof raw === 'string' ? raw : '';
  }
}

export interface Parsed {
  options: SimulatorOptions;
  help: boolean;
}

/** Parses argv (without node and script) and the environment into checked options. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Parsed {
  const byFlag = new Map<string, [Key, Spec]>((Object.entries(SPECS) as [Key, Spec][]).map(([k, s]) => [s.flag, [k, s]]));
  const given: Partial<Record<Key, [string | boolean, string]>> = {};
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument "${arg}" (flags start with --; see --help)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const negated = name.startsWith('no-') && !byFlag.has(name);
    const found = byFlag.get(negated ? name.slice(3) : name);
    if (!found) throw new OptionError(`unknown flag --${name} (see --help)`);
    const [key, spec] = found;
    if (spec.kind === 'bool') given[key] = [negated ? false : inline ?? true, 'flag'];
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new OptionError(`--${name} needs a value`);
      // `--fleet-key --devices 5` would take "--devices" as the key: a forgotten value, not a key.
      if (inline === undefined && value.startsWith('--')) throw new OptionError(`--${name} needs a value, got the flag ${value} (a value that starts with -- is written --${name}=${value})`);
      given[key] = [value, 'flag'];
    }
  }
  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SPECS) as [Key, Spec][]) {
    const g = given[key] ?? (env[spec.env] !== undefined ? ([env[spec.env]!, `env ${spec.env}`] as const) : undefined);
    raw[key] = g === undefined ? (spec.kind === 'types' ? coerce(spec, String(spec.default), 'default') : spec.default) : coerce(spec, g[0], g[1]);
  }
  const explicit = (k: Key): boolean => given[k] !== undefined || env[SPECS[k].env] !== undefined;
  if (raw.demo === true) for (const [k, v] of Object.entries(DEMO_PRESET)) if (!explicit(k as Key)) raw[k] = v;
  raw.typesGiven = explicit('types');
  return { options: help ? (raw as unknown as SimulatorOptions) : finish(raw), help };
}

/** Cross-field checks and derived defaults (transport ↔ URL). */
function finish(raw: Record<string, unknown>): SimulatorOptions {
  const url = raw.url as string | undefined;
  let transport = raw.transport as TransportName | undefined;
  if (url !== undefined) {
    if (!URL.canParse(url)) throw new OptionError(`--url / SIMULATE_URL: "${url}" is not a URL such as ws://127.0.0.1:8080 or mqtt://127.0.0.1:1883`);
    const scheme = new URL(url).protocol;
    const fromScheme: TransportName | undefined = scheme === 'ws:' || scheme === 'wss:' ? 'ws' : scheme === 'mqtt:' || scheme === 'mqtts:' ? 'mqtt' : undefined;
    if (fromScheme === undefined) throw new OptionError(`--url / SIMULATE_URL: "${url}" must start with ws://, wss://, mqtt:// or mqtts://`);
    if (transport !== undefined && transport !== fromScheme) throw new OptionError(`--url / SIMULATE_URL: a ${scheme}// URL does not go with --transport ${transport}`);
    transport = fromScheme;
  }
  transport ??= 'ws';
  const fleetKey = raw.fleetKey as string | undefined;
  if (fleetKey === undefined || fleetKey === '') throw new OptionError("--fleet-key / SIMULATE_FLEET_KEY is required: the gateway's fleet key (its --fleet-key)");
  const idPrefix = raw.idPrefix as string;
  if (idPrefix !== '' && !DEVICE_ID_PATTERN.test(idPrefix)) throw new OptionError(`--id-prefix / SIMULATE_ID_PREFIX: "${idPrefix}" may hold only A-Z a-z 0-9 . _ : -`);
  const devices = raw.devices as number;
  const incidentEveryS = raw.incidentEveryS as number;
  if (incidentEveryS > 0 && incidentEveryS < INCIDENT_LENGTH_S) throw new OptionError(`--incident-every / SIMULATE_INCIDENT_EVERY: ${incidentEveryS} is shorter than the incident (${INCIDENT_LENGTH_S} s); 0 runs it once`);
  const { types, deviceTypes } = typesOf(raw.types as string[], raw.typesFile as string | undefined, raw.typesGiven === true);
  return {
    transport,
    url: url ?? DEFAULT_URLS[transport],
    ca: readCa(raw.ca as string | undefined),
    fleetKey,
    devices,
    rate: raw.rate as number,
    durationS: raw.durationS as number,
    types,
    deviceTypes,
    idPrefix,
    batchMs: raw.batchMs as number,
    workers: Math.min(raw.workers as number, devices),
    connectRate: raw.connectRate as number,
    maxConnecting: (raw.maxConnecting as number | undefined) ?? DEFAULT_MAX_CONNECTING[transport],
    drainS: raw.drainS as number,
    seed: raw.seed as number,
    faults: raw.faults as boolean,
    json: raw.json as boolean,
    statusEveryS: raw.statusEveryS as number,
    churn: raw.churn as number,
    duplicate: raw.duplicate as number,
    reorder: raw.reorder as number,
    skewMs: raw.skewMs as number,
    malformed: raw.malformed as number,
    outage: raw.outage as OutageWindow | undefined,
    incident: raw.incident as boolean,
    incidentEveryS,
    demo: raw.demo as boolean,
  };
}

/** The fleet's types: from the types file when there is one (all of them unless --types picks), else modeled ones. */
function typesOf(list: string[], file: string | undefined, given: boolean): { types: string[]; deviceTypes: DeviceTypeSpec[] | undefined } {
  if (file === undefined && list.length === 1 && list[0]!.endsWith('.json')) [file, given] = [list[0], false];
  if (file === undefined) {
    for (const t of list) if (!isModeledType(t)) throw new OptionError(`--types / SIMULATE_TYPES: unknown device type "${t}" (known: ${MODELED_TYPES.join(', ')}; others come with --types-file)`);
    return { types: list, deviceTypes: undefined };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OptionError(`--types-file / SIMULATE_TYPES_FILE: ${file} cannot be read as JSON: ${(err as Error).message}`);
  }
  const parsed = parseDeviceTypes(doc);
  if (!parsed.ok) throw new OptionError(`--types-file / SIMULATE_TYPES_FILE: [TYPES_INVALID] ${file}: ${describeProblems(parsed.problems)}`);
  const known = parsed.types.map((t) => t.type);
  if (known.length === 0) throw new OptionError(`--types-file / SIMULATE_TYPES_FILE: ${file} declares no types`);
  if (!given) return { types: known, deviceTypes: parsed.types };
  for (const t of list) if (!known.includes(t)) throw new OptionError(`--types / SIMULATE_TYPES: "${t}" is not a type of ${file} (it has ${known.join(', ')})`);
  return { types: list, deviceTypes: parsed.types };
}

function readCa(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OptionError(`--ca / SIMULATE_CA: ${file} cannot be read: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new OptionError(`--ca / SIMULATE_CA: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return pem;
}

/**
 * Options for programmatic use: defaults for everything not given (url and fleetKey required; the
 * URL and transport are checked as the flags are), and workers 0 (the calling thread) by default.
 */
export function simulatorOptions(o: Partial<SimulatorOptions> & { url: string; fleetKey: string }): SimulatorOptions {
  const argv = [`--url=${o.url}`, `--fleet-key=${o.fleetKey}`, ...(o.transport ? [`--transport=${o.transport}`] : [])];
  const { options } = parseOptions(argv, {});
  const merged = { ...options, workers: 0, ...o };
  if (o.maxConnecting === undefined) merged.maxConnecting = DEFAULT_MAX_CONNECTING[merged.transport];
  return { ...merged, workers: Math.min(merged.workers, merged.devices) };
}

export function helpText(): string {
  const lines = [
    'Usage: simulate --fleet-key KEY [flags]',
    '',
    'Puts virtual devices (climate sensors, power meters, vibration monitors) on a gateway through the',
    'device SDK, prints a live status line, and at the end checks that the gateway acked every frame',
    '(exit code 0; 1 when frames were left unacked after the drain period, or devices never connected or',
    'were refused, with the reason; 2 for bad flags).',
    'Every flag can also be set by its environment variable; flags win.',
    '',
  ];
  for (const spec of Object.values(SPECS) as Spec[]) {
    const value = spec.kind === 'bool' ? '' : spec.kind === 'enum' ? ` ${spec.choices!.join('|')}` : spec.kind === 'window' ? ' S:D' : spec.kind === 'types' ? ' LIST' : spec.kind === 'string' ? ' VALUE' : ' N';
    const def = spec.shown ?? (spec.default === undefined ? 'none' : spec.default === '' ? '""' : String(spec.default));
    lines.push(`  --${spec.flag}${value}  (${spec.env}, default: ${def})`);
    lines.push(`      ${spec.doc}`);
  }
  lines.push('  --help  print this help');
  return lines.join('\n');
}
