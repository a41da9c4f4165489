/**
 * The devices of one worker (or of the main thread with --workers 0): connects them at a bounded
 * rate, ticks every due device from one shared timer, applies churn and the outage window, and
 * sums their counters on demand. stop() stops the readings, waits for the last acks (the drain) and
 * closes every client.
 */
import { fleetToken } from '../devices/token.js';
import { emptyCounters, addCounters, type FleetCounters } from './counters.js';
import type { WireContext } from './chaos.js';
import { VirtualDevice, type DeviceEnv } from './device.js';
import { deviceIdOf, typeOfIndex } from './ids.js';
import { incidentRole, type IncidentClock } from './incident.js';
import { MalformedSender } from './malformed.js';
import { derive, prng, unit } from './models/noise.js';
import type { SimulatorOptions } from './options.js';
import { DueQueue } from './schedule.js';

export interface FleetPlan {
  options: SimulatorOptions;
  /** Global indexes [from, to) of this fleet's devices. */
  from: number;
  to: number;
  /** New connections per second for this fleet (its share of --connect-rate). */
  connectRate: number;
}

/** Devices due within this many ms are ticked together (fewer timer wake-ups). */
const RESOLUTION_MS = 4;
const CONNECT_STEP_MS = 10;
const DRAIN_POLL_MS = 100;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export class Fleet {
  readonly devices: VirtualDevice[] = [];
  readonly #byId = new Map<string, VirtualDevice>();
  readonly #plan: FleetPlan;
  readonly #counters = emptyCounters();
  readonly #queue = new DueQueue<VirtualDevice>();
  readonly #random: () => number;
  readonly #wires: WireContext;
  readonly #malformed: MalformedSender | undefined;
  readonly #incident: IncidentClock | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #connectTimer: ReturnType<typeof setInterval> | undefined;
  #churnTimer: ReturnType<typeof setInterval> | undefined;
  #outageTimer: ReturnType<typeof setTimeout> | undefined;
  #started = 0;
  /** Devices started whose first connection has not opened yet (nor given up). */
  #connecting = 0;
  #sending = false;
  #stopping: Promise<FleetCounters> | undefined;

  constructor(plan: FleetPlan) {
    this.#plan = plan;
    const o = plan.options;
    this.#random = prng(derive(o.seed, 0xc4a05 + plan.from));
    this.#wires = { counters: this.#counters, duplicate: o.duplicate, reorder: o.reorder, random: this.#random, outageUntil: 0 };
    this.#malformed = o.malformed > 0 ? new MalformedSender(o.transport, o.url, o.fleetKey, this.#counters) : undefined;
    this.#incident = o.incident ? { t0: 0, everyMs: o.incidentEveryS * 1000 } : undefined;
    const env: DeviceEnv = {
      transport: o.transport,
      url: o.url,
      ca: o.ca,
      batchMs: o.batchMs,
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS + (o.outage ? o.outage.durationS * 1000 + 1000 : 0),
      closeTimeoutMs: 5000,
      faults: o.faults,
      incident: this.#incident,
      wires: this.#wires,
      counters: this.#counters,
      schedule: (d, at) => this.#schedule(d, at),
      refused: () => this.#counters.refused++,
      settled: () => this.#connecting--,
    };
    const skewSeed = derive(o.seed, 0x5e3);
    const phaseSeed = derive(o.seed, 0xf4a5e);
    for (let i = plan.from; i < plan.to; i++) {
      const id = deviceIdOf(o.types, i, o.idPrefix);
      const type = typeOfIndex(o.types, i);
      const d = new VirtualDevice(
        {
          index: i,
          id,
          type,
          spec: o.deviceTypes?.find((t) => t.type === type),
          token: fleetToken(o.fleetKey, id),
          seed: derive(o.seed, i),
          intervalMs: 1000 / o.rate,
          skewMs: Math.round((unit(skewSeed, i) * 2 - 1) * o.skewMs),
          phase: unit(phaseSeed, i),
          incidentRole: o.incident ? incidentRole(o.types, i) : undefined,
        },
        env,
      );
      this.devices.push(d);
      this.#byId.set(id, d);
    }
    this.#counters.devices = this.devices.length;
  }

  device(id: string): VirtualDevice | undefined {
    return this.#byId.get(id);
  }

  /**
   * Starts connecting (at the plan's rate), churn and the outage timer. `t0` is the simulation's
   * start (ms since 1970), the same in every worker: the outage window counts from it.
   */
  start(t0 = Date.now()): void {
    if (this.#sending || this.#stopping) return;
    this.#sending = true;
    if (this.#incident) this.#incident.t0 = t0;
    const o = this.#plan.options;
    let credit = 1;
    let last = Date.now();
    const connectSome = (): void => {
      const now = Date.now();
      // Unused credit is capped at 100 ms worth, so a stall does not turn into a burst.
      credit = Math.min(credit + ((now - last) / 1000) * this.#plan.connectRate, Math.max(1, this.#plan.connectRate / 10));
      last = now;
      // At most maxConnecting first connections in flight: when the gateway answers slower than the
      // rate, the fleet waits instead of piling up attempts that would time out and retry.
      while (credit >= 1 && this.#connecting < o.maxConnecting && this.#started < this.devices.length) {
        credit--;
        this.#connecting++;
        this.devices[this.#started++]!.start();
      }
      if (this.#started >= this.devices.length && this.#connectTimer !== undefined) {
        clearInterval(this.#connectTimer);
        this.#connectTimer = undefined;
      }
    };
    this.#connectTimer = setInterval(connectSome, CONNECT_STEP_MS);
    connectSome();
    if (o.churn > 0) {
      this.#churnTimer = setInterval(() => {
        for (const d of this.devices) if (this.#random() < o.churn && d.drop()) this.#counters.churned++;
      }, 1000);
    }
    if (o.outage) {
      const { startS, durationS } = o.outage;
      this.#outageTimer = setTimeout(() => this.#outage(t0 + (startS + durationS) * 1000), Math.max(0, t0 + startS * 1000 - Date.now()));
    }
  }

  #outage(until: number): void {
    this.#outageTimer = undefined;
    this.#wires.outageUntil = until;
    for (const d of this.devices) if (d.drop()) this.#counters.outages++;
  }

  #schedule(d: VirtualDevice, at: number): void {
    if (!this.#sending) return;
    this.#queue.push(d, at);
    this.#arm();
  }

  #arm(): void {
    const next = this.#queue.next;
    if (next === Infinity || !this.#sending) return;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= next) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = next;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, next - Date.now()));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (!this.#sending) return;
    const now = Date.now();
    const horizon = now + RESOLUTION_MS;
    const malformed = this.#malformed;
    const p = this.#plan.options.malformed;
    let d: VirtualDevice | undefined;
    while ((d = this.#queue.popDue(horizon)) !== undefined) {
      d.tick(now);
      if (malformed !== undefined && this.#random() < p && d.connected) malformed.send(d.id);
      let due = d.due + d.intervalMs;
      if (due <= horizon) due = now + d.intervalMs; // fell behind: skip the missed rounds rather than burst
      this.#queue.push(d, due);
    }
    this.#arm();
  };

  /** The counters now: this fleet's tallies plus every device's SDK stats. */
  counters(): FleetCounters {
    const c = addCounters(emptyCounters(), this.#counters);
    for (const d of this.devices) d.addStats(c);
    return c;
  }

  /** Stops the readings, waits up to `drainMs` for every frame to be acked, closes every client. Idempotent. */
  stop(drainMs: number): Promise<FleetCounters> {
    this.#stopping ??= this.#stop(drainMs);
    return this.#stopping;
  }

  async #stop(drainMs: number): Promise<FleetCounters> {
    this.#sending = false;
    for (const t of [this.#connectTimer, this.#churnTimer]) if (t !== undefined) clearInterval(t);
    for (const t of [this.#timer, this.#outageTimer]) if (t !== undefined) clearTimeout(t);
    this.#connectTimer = this.#churnTimer = this.#timer = this.#outageTimer = undefined;
    for (const d of this.devices) d.stopSending();
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && this.counters().unacked > 0) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    this.#malformed?.close();
    await Promise.all(this.devices.map((d) => d.close()));
    return this.counters();
  }
}
