import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../device-id.js';
import { MQTT_DEFAULTS, type MqttOptions } from './mqtt-transport.js';
import type { TransportFactory } from './transport.js';

export type WhenFull = 'drop-oldest' | 'reject';

/** The built-in transports, chosen by name (or by the URL scheme when no name is given). */
export type TransportName = 'ws' | 'mqtt';

/** Timer functions the client uses; tests inject fake ones. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface DeviceClientOptions {
  /**
   * Gateway address. ws:// or wss:// connects over WebSocket (an empty path or '/' becomes /device;
   * ?id=<deviceId> is added); mqtt:// or mqtts:// connects to the gateway's MQTT broker (default
   * ports 1883 / 8883; path ignored).
   */
  url: string;
  /** The device's id (no whitespace, '/', '+' or '#': it also names MQTT topics). */
  deviceId: string;
  /** The device's token, sent as `Authorization: Bearer <token>` (MQTT: the CONNECT password); never put in the URL or logged. */
  token: string;
  /** This boot's id, a non-zero u32 (default: random per client instance, crypto.getRandomValues). */
  epoch?: number;
  /**
   * Telemetry frames of earlier boots this device kept (for example in flash) that no ack covered:
   * each epoch's frames in seq order, as `DeviceClient.unackedFrames()` returned them before the
   * reboot. They are resent first, with their own epoch and seq, on every connect until an ack of
   * their epoch covers them (default none).
   */
  keptFrames?: readonly Uint8Array[];
  /** Seq of the first telemetry frame (default 0). For a device that persists its seq, and for tests of the wrap. */
  initialSeq?: number;
  /** Readings sent within this many ms share one telemetry frame; 0 = flush on the next microtask (default 20). */
  batchMs?: number;
  /** A frame is sealed once it holds this many readings (default 256, at most 65535). */
  maxReadingsPerFrame?: number;
  /**
   * A frame is sealed before it would grow past this many bytes: the gateway's --max-frame-bytes
   * (default 65536, the gateway's default; 36 … 917512). A frame the gateway still refuses as too
   * large is dropped (counted in `rejected`), never resent.
   */
  maxFrameBytes?: number;
  /** Frames kept until acked (default 10000). */
  maxUnackedFrames?: number;
  /** When maxUnackedFrames frames wait: 'drop-oldest' (default; counted, 'dropped' event) or 'reject' (send() throws BUFFER_FULL). */
  whenFull?: WhenFull;
  /** Reconnect after a lost or failed connection (default true). Never after close(), refused credentials (HTTP 401, MQTT CONNACK 4/5 or SUBACK) or close codes 4400–4499. */
  reconnect?: boolean;
  /** First reconnect delay ceiling in ms (default 200); it doubles per failed attempt. */
  backoffInitialMs?: number;
  /** Largest reconnect delay ceiling in ms (default 30000). */
  backoffMaxMs?: number;
  /** A connection attempt that is not open after this many ms is abandoned (default 10000). */
  connectTimeoutMs?: number;
  /** close() waits at most this long for acks, and as long again for the close handshake (default 5000). */
  closeTimeoutMs?: number;
  /** Timer functions (default: the global setTimeout/clearTimeout). */
  timers?: Timers;
  /** Random source in [0, 1) for the backoff jitter (default Math.random). */
  random?: () => number;
  /**
   * 'ws' or 'mqtt' (default: from the url's scheme, which must match), or a TransportFactory that
   * connects some other way (tests): then any URL is accepted and handed to nobody.
   */
  transport?: TransportName | TransportFactory;
  /** MQTT settings, used when the transport is 'mqtt' (see MQTT_DEFAULTS). */
  mqtt?: MqttOptions;
  /** CA certificate(s) (PEM) to trust for wss:// and mqtts:// when the gateway's certificate is from a private CA. */
  ca?: string | Buffer;
}

/** Every default in one place. */
export const DEFAULTS = {
  initialSeq: 0,
  batchMs: 20,
  maxReadingsPerFrame: 256,
  maxFrameBytes: 65_536,
  maxUnackedFrames: 10_000,
  whenFull: 'drop-oldest' as WhenFull,
  reconnect: true,
  backoffInitialMs: 200,
  backoffMaxMs: 30_000,
  connectTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
} as const;

/** Options after defaults and checks. Holds no token: that stays inside the transport factory. */
export interface ResolvedOptions extends Required<Omit<DeviceClientOptions, 'token' | 'transport' | 'mqtt' | 'ca' | 'keptFrames'>> {
  transport: TransportName | TransportFactory;
  ca: string | Buffer | undefined;
  mqtt: Required<Omit<MqttOptions, 'ca'>> & Pick<MqttOptions, 'ca'>;
}

const DEFAULT_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A random non-zero u32 from the platform's CSPRNG. */
export function randomEpoch(): number {
  const a = new Uint32Array(1);
  while (a[0] === 0) globalThis.crypto.getRandomValues(a);
  return a[0]!;
}

function fail(name: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  throw new TypeError(`The "${name}" option must be ${expected}, got ${shown}`);
}

function int(o: DeviceClientOptions, name: keyof typeof DEFAULTS & keyof DeviceClientOptions, min: number, max: number): number {
  const v = o[name] ?? DEFAULTS[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(name, `an integer from ${min} to ${max}`, v);
  return v;
}

/** Visible ASCII: anything else cannot travel in an HTTP header. */
const TOKEN = /^[\x21-\x7e]+$/;

/** Applies DEFAULTS and validates; every error names the option. The token is checked, not kept. */
export function resolveOptions(o: DeviceClientOptions): ResolvedOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('DeviceClient needs an options object { url, deviceId, token }');
  if (o.transport !== undefined && typeof o.transport !== 'function' && o.transport !== 'ws' && o.transport !== 'mqtt') {
    fail('transport', "'ws', 'mqtt' or a TransportFactory function", o.transport);
  }
  if (typeof o.url !== 'string') fail('url', 'a string', o.url);
  if (!URL.canParse(o.url)) fail('url', 'a valid URL such as ws://127.0.0.1:8080 or mqtt://127.0.0.1:1883', o.url);
  const transport = typeof o.transport === 'function' ? o.transport : transportFor(o.url, o.transport);
  if (typeof o.deviceId !== 'string' || !DEVICE_ID_PATTERN.test(o.deviceId)) {
    fail('deviceId', DEVICE_ID_RULE, o.deviceId);
  }
  if (typeof o.token !== 'string' || !TOKEN.test(o.token)) {
    // Never echo the token itself.
    throw new TypeError('The "token" option must be a non-empty string of visible ASCII characters');
  }
  if (o.keptFrames !== undefined && !Array.isArray(o.keptFrames)) fail('keptFrames', 'an array of Uint8Array frames', typeof o.keptFrames);
  const epoch = o.epoch ?? randomEpoch();
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) fail('epoch', 'an integer from 1 to 4294967295', epoch);
  const whenFull = o.whenFull ?? DEFAULTS.whenFull;
  if (whenFull !== 'drop-oldest' && whenFull !== 'reject') fail('whenFull', "'drop-oldest' or 'reject'", whenFull);
  const reconnect = o.reconnect ?? DEFAULTS.reconnect;
  if (typeof reconnect !== 'boolean') fail('reconnect', 'a boolean', reconnect);
  const timers = o.timers ?? DEFAULT_TIMERS;
  if (typeof timers !== 'object' || typeof timers.setTimeout !== 'function' || typeof timers.clearTimeout !== 'function') {
    fail('timers', 'an object { setTimeout, clearTimeout }', timers);
  }
  const random = o.random ?? Math.random;
  if (typeof random !== 'function') fail('random', 'a function returning a number in [0, 1)', random);
  const DAY = 86_400_000;
  const backoffInitialMs = int(o, 'backoffInitialMs', 1, DAY);
  const backoffMaxMs = int(o, 'backoffMaxMs', 1, DAY);
  if (backoffMaxMs < backoffInitialMs) fail('backoffMaxMs', `at least backoffInitialMs (${backoffInitialMs})`, backoffMaxMs);
  return {
    url: o.url,
    deviceId: o.deviceId,
    epoch,
    initialSeq: int(o, 'initialSeq', 0, 0xffffffff),
    batchMs: int(o, 'batchMs', 0, 60_000),
    maxReadingsPerFrame: int(o, 'maxReadingsPerFrame', 1, 65535),
    // 36: a frame of one reading of the largest kind (f64 with an offset); 917512: the largest v1 frame.
    maxFrameBytes: int(o, 'maxFrameBytes', 36, 917_512),
    maxUnackedFrames: int(o, 'maxUnackedFrames', 1, 100_000_000),
    whenFull,
    reconnect,
    backoffInitialMs,
    backoffMaxMs,
    connectTimeoutMs: int(o, 'connectTimeoutMs', 1, DAY),
    closeTimeoutMs: int(o, 'closeTimeoutMs', 0, DAY),
    timers,
    random,
    transport,
    mqtt: resolveMqtt(o.mqtt),
    ca: resolveCa(o.ca),
  };
}

function resolveCa(ca: unknown): string | Buffer | undefined {
  if (ca !== undefined && typeof ca !== 'string' && !Buffer.isBuffer(ca)) fail('ca', 'a PEM string or a Buffer', typeof ca);
  return ca as string | Buffer | undefined;
}

const SCHEMES: Record<TransportName, readonly string[]> = { ws: ['ws:', 'wss:'], mqtt: ['mqtt:', 'mqtts:'] };

/** The transport the URL's scheme names; with an explicit `name`, the scheme must belong to it. */
function transportFor(url: string, name: TransportName | undefined): TransportName {
  const protocol = new URL(url).protocol;
  if (name !== undefined) {
    if (!SCHEMES[name].includes(protocol)) fail('url', `a ${SCHEMES[name].map((p) => `${p}//`).join(' or ')} URL with transport '${name}'`, url);
    return name;
  }
  if (SCHEMES.ws.includes(protocol)) return 'ws';
  if (SCHEMES.mqtt.includes(protocol)) return 'mqtt';
  return fail('url', 'a ws://, wss://, mqtt:// or mqtts:// URL', url);
}

function resolveMqtt(m: MqttOptions | undefined): ResolvedOptions['mqtt'] {
  if (m === undefined) return { ...MQTT_DEFAULTS };
  if (m === null || typeof m !== 'object') fail('mqtt', 'an object { protocolVersion?, keepaliveSec?, ca? }', m);
  const protocolVersion = m.protocolVersion ?? MQTT_DEFAULTS.protocolVersion;
  if (protocolVersion !== 4 && protocolVersion !== 5) fail('mqtt.protocolVersion', '4 (MQTT 3.1.1) or 5', protocolVersion);
  const keepaliveSec = m.keepaliveSec ?? MQTT_DEFAULTS.keepaliveSec;
  // MQTT carries keep alive as a u16 of seconds; 0 turns it off.
  if (!Number.isInteger(keepaliveSec) || keepaliveSec < 0 || keepaliveSec > 65535) fail('mqtt.keepaliveSec', 'an integer from 0 to 65535', keepaliveSec);
  if (m.ca !== undefined && typeof m.ca !== 'string' && !Buffer.isBuffer(m.ca)) fail('mqtt.ca', 'a PEM string or a Buffer', typeof m.ca);
  const out: ResolvedOptions['mqtt'] = { protocolVersion, keepaliveSec };
  if (m.ca !== undefined) out.ca = m.ca;
  return out;
}
