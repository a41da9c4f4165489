/**
 * `simulate --incident`: a staged incident that makes the gateway's default alarm rules fire within
 * half a minute of the start, on a few named devices, and heal again, so a newcomer to `npm run demo`
 * sees an alarm raised, can acknowledge it, and sees it cleared by its rule. The rules it is made
 * for (the gateway's defaults for the demo types): climate temperature above 35 °C for 10 s (clears
 * once back below it, less the rule's hysteresis), a vibration monitor's `alarm` channel true, any
 * device silent for 60 s.
 *
 * The first device of each type plays a part (when the fleet has that type):
 * - climate: overheats: temperature drifts up to 40 °C from second 5 to 15, holds, cools from second 135;
 * - vibration: a bearing knocks: velocity 24 mm/s from second 20 to 35, so its `alarm` channel is on;
 * - power: falls silent (connected, sending nothing) from second 15 to 90.
 * The schedule counts from the simulation's start and starts over every `--incident-every` seconds
 * (0: once). What a device sends is a pure function of that time, the device's time and its model.
 */
import { driftTo } from './models/faults.js';
import { clamp, gauss } from './models/noise.js';
import { VibrationModel, type SensorModel } from './models/index.js';
import { deviceIdOf } from './ids.js';

export type IncidentRole = 'overheat' | 'machine-alarm' | 'silence';

/** The parts, in seconds from the start of a cycle. */
export const INCIDENT_TIMELINE = {
  overheat: { fromS: 5, rampS: 10, holdS: 120, coolS: 15, peakC: 40 },
  machineAlarm: { fromS: 20, forS: 15, velocity: 24 },
  silence: { fromS: 15, forS: 75 },
} as const;

/** When the last part is over: a cycle shorter than this would cut the overheat short. */
export const INCIDENT_LENGTH_S = Math.max(
  INCIDENT_TIMELINE.overheat.fromS + INCIDENT_TIMELINE.overheat.rampS + INCIDENT_TIMELINE.overheat.holdS + INCIDENT_TIMELINE.overheat.coolS,
  INCIDENT_TIMELINE.machineAlarm.fromS + INCIDENT_TIMELINE.machineAlarm.forS,
  INCIDENT_TIMELINE.silence.fromS + INCIDENT_TIMELINE.silence.forS,
);

const ROLE_OF_TYPE: ReadonlyMap<string, IncidentRole> = new Map([
  ['climate', 'overheat'],
  ['vibration', 'machine-alarm'],
  ['power', 'silence'],
]);

/** The part fleet device number `index` plays: the first device of each type has one. */
export function incidentRole(types: readonly string[], index: number): IncidentRole | undefined {
  const type = types[index];
  return type !== undefined && types.indexOf(type) === index ? ROLE_OF_TYPE.get(type) : undefined;
}

export interface IncidentPart {
  id: string;
  role: IncidentRole;
  /** One line for the start banner. */
  text: string;
}

/** Who plays what in a fleet of `devices` devices, for the start banner and the demo. */
export function incidentCast(types: readonly string[], devices: number, idPrefix = ''): IncidentPart[] {
  const parts: IncidentPart[] = [];
  const { overheat: o, machineAlarm: m, silence: s } = INCIDENT_TIMELINE;
  for (let i = 0; i < Math.min(types.length, devices); i++) {
    const role = incidentRole(types, i);
    if (role === undefined) continue;
    const id = deviceIdOf(types, i, idPrefix);
    const text =
      role === 'overheat'
        ? `${id} overheats: temperature up to ${o.peakC} °C from second ${o.fromS} to ${o.fromS + o.rampS}, back down from second ${o.fromS + o.rampS + o.holdS}`
        : role === 'machine-alarm'
          ? `${id} vibrates at ${m.velocity} mm/s (its alarm channel on) from second ${m.fromS} to ${m.fromS + m.forS}`
          : `${id} falls silent from second ${s.fromS} to ${s.fromS + s.forS}`;
    parts.push({ id, role, text });
  }
  return parts;
}

/** Seconds into the current cycle at `sinceStartMs` after the start; cycles repeat every `everyMs` (0: one cycle, then none). */
export function cycleSeconds(sinceStartMs: number, everyMs: number): number {
  if (sinceStartMs < 0) return -1;
  return (everyMs > 0 ? sinceStartMs % everyMs : sinceStartMs) / 1000;
}

/** When the schedule starts: the fleet sets `t0` when it starts (every worker gets the same). */
export interface IncidentClock {
  t0: number;
  everyMs: number;
}

/** One device's part, applied to each round of its readings. */
export class Incident {
  readonly role: IncidentRole;
  readonly #model: SensorModel;
  readonly #clock: IncidentClock;
  /** Index of the channel the part changes (temperature, velocity); -1 for silence. */
  readonly #channel: number;
  /** Every channel: what a silent round drops. */
  readonly #all: number;
  /** Rounds changed or dropped so far, for tests and curiosity. */
  affected = 0;

  constructor(role: IncidentRole, model: SensorModel, clock: IncidentClock) {
    this.role = role;
    this.#model = model;
    this.#clock = clock;
    const channels = model.spec.channels;
    this.#channel = role === 'silence' ? -1 : channels.findIndex((c) => c.name === (role === 'overheat' ? 'temperature' : 'velocity'));
    this.#all = channels.length >= 31 ? -1 : (1 << channels.length) - 1;
  }

  /**
   * Applies the part due at real time `now` (device time `t`) to `out`, in place. Returns a bit mask
   * of channel indexes to leave out of this round: every one while silent, else 0.
   */
  apply(now: number, t: number, out: Float64Array): number {
    const c = cycleSeconds(now - this.#clock.t0, this.#clock.everyMs);
    if (c < 0 || this.#clock.t0 === 0) return 0;
    switch (this.role) {
      case 'overheat': {
        const o = INCIDENT_TIMELINE.overheat;
        const coolFrom = o.fromS + o.rampS + o.holdS;
        if (c < o.fromS || c >= coolFrom + o.coolS || this.#channel < 0) return 0;
        const i = this.#channel;
        const hot = o.peakC + 0.15 * gauss(0x0e47, t);
        const v = out[i]!;
        out[i] = clamp(c < o.fromS + o.rampS ? driftTo(v, hot, (c - o.fromS) / o.rampS) : c < coolFrom ? hot : driftTo(hot, v, (c - coolFrom) / o.coolS), -20, 45);
        this.affected++;
        return 0;
      }
      case 'machine-alarm': {
        const m = INCIDENT_TIMELINE.machineAlarm;
        if (c < m.fromS || c >= m.fromS + m.forS || this.#channel < 0) return 0;
        const i = this.#channel;
        out[i] = Math.max(out[i]!, m.velocity * (1 + 0.03 * gauss(0xb3a1, t)));
        // Peak and the alarm channel follow velocity (and the device's own threshold).
        if (this.#model instanceof VibrationModel) this.#model.follow(t, out);
        this.affected++;
        return 0;
      }
      case 'silence': {
        const s = INCIDENT_TIMELINE.silence;
        if (c < s.fromS || c >= s.fromS + s.forS) return 0;
        this.affected++;
        return this.#all;
      }
    }
  }
}
