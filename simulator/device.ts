/**
 * One virtual device: a sensor model, a DeviceClient (a new one per boot), and the commands it
 * answers. It does not own a timer: its fleet calls tick() when it is due, so thousands of devices
 * share one timer.
 *
 * Commands: `set-interval` {ms} or {hz} changes the send rate; `reboot` answers, then closes the
 * client (its unacked frames are delivered first), waits a moment and boots a new client with a new
 * epoch; `set-threshold` {value} sets a vibration monitor's alarm threshold (other types refuse it);
 * any other name is refused (Rejected) by the SDK.
 */
import { DeviceClient, mqttTransport, wsTransport, type DeviceClientStats, type DeviceReading, type TransportFactory } from '../devices/sdk/index.js';
import { countError, type FleetCounters } from './counters.js';
import { Wire, type WireContext } from './chaos.js';
import type { DeviceTypeSpec } from '../devices/device-types.js';
import { Incident, type IncidentClock, type IncidentRole } from './incident.js';
import { createModel, Faults, modelFor, TypesFileModel, VibrationModel, type ModeledType, type SensorModel } from './models/index.js';
import type { TransportName } from './options.js';

/** What every device of a fleet shares. */
export interface DeviceEnv {
  transport: TransportName;
  url: string;
  /** CA certificate(s) (PEM) to trust for wss:// and mqtts:// (--ca). */
  ca: string | undefined;
  batchMs: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  faults: boolean;
  /** With --incident: when its schedule started (the fleet sets t0 on start). */
  incident: IncidentClock | undefined;
  wires: WireContext;
  counters: FleetCounters;
  /** The fleet's timer: run tick() at `dueAt` (ms since 1970). */
  schedule(device: VirtualDevice, dueAt: number): void;
  /** Called when the device gives up for good (refused credentials, 44xx close). */
  refused(device: VirtualDevice): void;
  /** Called once, when the device's first connection opened or it gave up (the fleet paces connects by it). */
  settled(device: VirtualDevice): void;
}

export interface DeviceSetup {
  index: number;
  id: string;
  type: string;
  /** The type from a types file (simulate --types-file); without one, `type` is one the simulator models. */
  spec?: DeviceTypeSpec | undefined;
  token: string;
  seed: number;
  intervalMs: number;
  /** This device's clock minus the real one, ms. */
  skewMs: number;
  /** Where in its interval the device sends (0..1), so a fleet does not send in lockstep. */
  phase: number;
  /** Its part in the --incident schedule, if any. */
  incidentRole?: IncidentRole | undefined;
}

/** The SDK counters a device adds up over its reboots (each boot is a new client). */
type Totals = Pick<DeviceClientStats, 'sent' | 'acked' | 'resent' | 'dropped' | 'reconnects' | 'unacked'>;

/** Shortest and longest interval set-interval accepts, ms. */
export const MIN_INTERVAL_MS = 1;
export const MAX_INTERVAL_MS = 86_400_000;
/** How long a rebooting device stays away between its two clients. */
const BOOT_MS = 250;

export class VirtualDevice {
  readonly id: string;
  readonly index: number;
  readonly type: string;
  readonly model: SensorModel;
  readonly skewMs: number;
  intervalMs: number;
  /** When the fleet's timer should call tick() next; NaN while not scheduled. */
  due = NaN;
  readonly #setup: DeviceSetup;
  readonly #env: DeviceEnv;
  /** The SDK's own transport for this device, which every boot's Wire wraps. */
  #inner: TransportFactory | undefined;
  readonly #values: Float64Array;
  readonly #readings: DeviceReading[];
  readonly #faults: Faults | undefined;
  /** Its --incident part, if it has one. */
  readonly incident: Incident | undefined;
  readonly #retired: Totals = { sent: 0, acked: 0, resent: 0, dropped: 0, reconnects: 0, unacked: 0 };
  /** Made on start() (so a big fleet's construction cost is spread over its connect phase), and anew per reboot. */
  #client: DeviceClient | undefined;
  #wire: Wire | undefined;
  /** The current client closed for a reboot and its counters moved to #retired. */
  #clientRetired = false;
  #rebooting: Promise<void> | undefined;
  #scheduled = false;
  #stopped = false;
  #gaveUp = false;
  #settled = false;
  /** A connection of this device has opened at least once (a device that never connected sent nothing). */
  #everConnected = false;

  constructor(setup: DeviceSetup, env: DeviceEnv) {
    this.#setup = setup;
    this.#env = env;
    this.id = setup.id;
    this.index = setup.index;
    this.type = setup.type;
    this.skewMs = setup.skewMs;
    this.intervalMs = setup.intervalMs;
    const start = Date.now() + setup.skewMs;
    this.model = setup.spec ? modelFor(setup.spec, setup.seed, start) : createModel(setup.type as ModeledType, setup.seed, start);
    const channels = this.model.spec.channels;
    this.#values = new Float64Array(channels.length);
    this.#readings = channels.map((c) => ({ channel: c.id, value: 0, type: c.type }));
    this.#faults = env.faults ? new Faults(setup.seed, this.model.spec) : undefined;
    this.incident = env.incident && setup.incidentRole ? new Incident(setup.incidentRole, this.model, env.incident) : undefined;
  }

  /** The current client (a new one after each reboot); undefined before start(). */
  get client(): DeviceClient | undefined {
    return this.#client;
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** Starts connecting; readings start with the first connection. */
  start(): void {
    if (this.#client !== undefined || this.#stopped) return;
    [this.#client, this.#wire] = this.#boot();
    this.#connect(this.#client);
  }

  #boot(): [DeviceClient, Wire] {
    const env = this.#env;
    const target = { url: env.url, deviceId: this.id, token: this.#setup.token, ca: env.ca };
    this.#inner ??= env.transport === 'mqtt' ? mqttTransport({ ...target, connectTimeoutMs: env.connectTimeoutMs }) : wsTransport(target);
    const wire = new Wire(this.#inner, env.wires, 2 * this.intervalMs + 50);
    const client = new DeviceClient({
      url: env.url,
      deviceId: this.id,
      token: this.#setup.token,
      transport: wire.factory,
      batchMs: env.batchMs,
      connectTimeoutMs: env.connectTimeoutMs,
      closeTimeoutMs: env.closeTimeoutMs,
    });
    client.on('error', (e) => countError(env.counters, e.code, e.message));
    client.on('acked', (a) => wire.acked(a.seq, a.frames, Date.now()));
    client.on('connected', () => {
      this.#everConnected = true;
      this.#settle();
      if (this.#scheduled || this.#stopped) return;
      this.#scheduled = true;
      const now = Date.now();
      env.schedule(this, now + this.#setup.phase * this.intervalMs);
    });
    client.onCommand('set-interval', (args) => this.#setInterval(args));
    client.onCommand('reboot', () => this.#reboot());
    const own = this.model instanceof TypesFileModel ? this.model.base : this.model;
    if (own instanceof VibrationModel) {
      const model = own;
      client.onCommand('set-threshold', (args) => {
        const value = (args as { value?: unknown } | null)?.value;
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 50) throw new Error('set-threshold needs {"value": mm/s from 0 to 50}');
        model.threshold = value;
        this.#env.counters.commands++;
        return { threshold: value };
      });
    }
    return [client, wire];
  }

  #connect(client: DeviceClient): void {
    client.connect().catch(() => {
      // Rejected only when the client gave up (401, 44xx) or was closed; 'error' counted the why.
      if (!this.#stopped && client === this.#client && !this.#gaveUp) {
        this.#gaveUp = true;
        this.#env.refused(this);
      }
      this.#settle();
    });
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#env.settled(this);
  }

  /** Takes one round of readings at device time and hands them to the client. */
  tick(now: number): void {
    const client = this.#client;
    if (client === undefined || this.#rebooting !== undefined || this.#stopped || this.#gaveUp) return;
    const t = Math.round(now + this.skewMs);
    const values = this.#values;
    this.model.sample(t, values);
    const dropped = (this.#faults?.apply(t, values) ?? 0) | (this.incident?.apply(now, t, values) ?? 0);
    const readings = this.#readings;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      r.value = r.type === 'bool' ? values[i] !== 0 : values[i]!;
    }
    const batch = dropped === 0 ? readings : readings.filter((_, i) => (dropped & (1 << i)) === 0);
    if (batch.length === 0) return;
    try {
      client.send(batch, t);
      this.#env.counters.readings += batch.length;
    } catch (err) {
      countError(this.#env.counters, (err as { code?: string }).code ?? 'SEND_FAILED');
    }
  }

  /** Drops the connection as a cut cable would; the client reconnects and resends. */
  drop(): boolean {
    return this.#rebooting === undefined && !this.#stopped && this.#wire !== undefined && this.#wire.drop();
  }

  #setInterval(args: unknown): { intervalMs: number } {
    const a = (args ?? {}) as { ms?: unknown; hz?: unknown };
    let ms: number;
    if (typeof a.ms === 'number') ms = a.ms;
    else if (typeof a.hz === 'number' && a.hz > 0) ms = 1000 / a.hz;
    else throw new Error('set-interval needs {"ms": N} or {"hz": N}');
    if (!Number.isFinite(ms) || ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) throw new Error(`the interval must be ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS} ms, got ${ms}`);
    this.intervalMs = ms;
    if (this.#wire !== undefined) this.#wire.holdMs = 2 * ms + 50;
    this.#env.counters.commands++;
    if (this.#scheduled) this.#env.schedule(this, Date.now() + ms);
    return { intervalMs: ms };
  }

  #reboot(): { rebooting: true; epoch: number } {
    const old = this.#client;
    if (this.#rebooting !== undefined || old === undefined) throw new Error('already rebooting');
    this.#env.counters.commands++;
    // The result goes out with this return; the restart happens after it.
    this.#rebooting = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#restart(old));
    return { rebooting: true, epoch: old.epoch };
  }

  async #restart(old: DeviceClient): Promise<void> {
    await old.close();
    this.#retire(old);
    this.#clientRetired = true;
    if (!this.#stopped) {
      await new Promise((r) => setTimeout(r, BOOT_MS));
      if (!this.#stopped) {
        [this.#client, this.#wire] = this.#boot();
        this.#clientRetired = false;
        this.#env.counters.reboots++;
        this.#connect(this.#client);
      }
    }
    this.#rebooting = undefined;
  }

  #retire(client: DeviceClient): void {
    const s = client.stats;
    const r = this.#retired;
    r.sent += s.sent;
    r.acked += s.acked;
    r.resent += s.resent;
    r.dropped += s.dropped;
    r.reconnects += s.reconnects;
    // Frames a closed client could not deliver are lost for good: they stay counted as unacked.
    r.unacked += s.unacked + s.pendingReadings;
  }

  /** Adds this device's SDK counters (every boot) into `c`. */
  addStats(c: FleetCounters): void {
    const r = this.#retired;
    c.sent += r.sent;
    c.acked += r.acked;
    c.resent += r.resent;
    c.dropped += r.dropped;
    c.reconnects += r.reconnects;
    c.unacked += r.unacked;
    if (!this.#clientRetired && this.#client !== undefined) {
      const s = this.#client.stats;
      c.sent += s.sent;
      c.acked += s.acked;
      c.resent += s.resent;
      c.dropped += s.dropped;
      c.reconnects += s.reconnects;
      c.unacked += s.unacked + s.pendingReadings;
    }
    if (this.connected) c.connected++;
    if (!this.#everConnected && !this.#gaveUp) c.neverConnected++;
  }

  /** Stops taking readings (the fleet's drain); the client keeps delivering what it holds. */
  stopSending(): void {
    this.#stopped = true;
  }

  /** Waits for a reboot in progress, then closes the client (it waits for acks up to closeTimeoutMs). */
  async close(): Promise<void> {
    this.#stopped = true;
    await this.#rebooting;
    await this.#client?.close();
  }
}
