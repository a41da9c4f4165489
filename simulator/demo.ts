/**
 * A small believable fleet for demos, in this process: `npm run demo` starts one next to an
 * in-process gateway so the dashboard has something to show.
 */
import { deviceIdOf } from './ids.js';
import { incidentCast, type IncidentPart } from './incident.js';
import type { ModeledType } from './models/index.js';
import { DEMO_PRESET, simulatorOptions, type TransportName } from './options.js';
import { Simulation } from './run.js';
import type { Summary } from './summary.js';

export interface DemoFleetOptions {
  /** Gateway base URL: ws://host:port, or mqtt://host:port for its MQTT broker. */
  url: string;
  fleetKey: string;
  /** Default 24. */
  devices?: number;
  /** Readings per second per device, default 1. */
  rate?: number;
  /** Default climate, power, vibration in turn. */
  types?: ModeledType[];
  transport?: TransportName;
  /** Put after the type in ids (`climate-<prefix>0001`), default none. */
  idPrefix?: string;
  /** Stage the alarm incident (simulate --incident), default true. */
  incident?: boolean;
}

export interface DemoFleet {
  /** The device ids, e.g. climate-0001, power-0001, vibration-0001, climate-0002, … */
  readonly ids: readonly string[];
  /** Who plays what in the staged incident (empty without one). */
  readonly incident: readonly IncidentPart[];
  readonly simulation: Simulation;
  /** Stops the readings, delivers what is unacked (up to 2 s), closes every device. Idempotent. */
  close(): Promise<Summary>;
}

/** Starts the fleet (devices connect and send as each comes up) and returns at once. */
export function startDemoFleet(o: DemoFleetOptions): DemoFleet {
  const options = simulatorOptions({
    url: o.url,
    fleetKey: o.fleetKey,
    devices: o.devices ?? DEMO_PRESET.devices,
    rate: o.rate ?? DEMO_PRESET.rate,
    durationS: 0,
    workers: 0,
    // Ctrl-C should feel immediate: on a healthy gateway the last acks take milliseconds.
    drainS: 2,
    demo: true,
    incident: o.incident ?? DEMO_PRESET.incident,
    ...(o.types ? { types: o.types } : {}),
    ...(o.transport ? { transport: o.transport } : {}),
    ...(o.idPrefix ? { idPrefix: o.idPrefix } : {}),
  });
  const simulation = Simulation.start(options);
  const ids = Array.from({ length: options.devices }, (_, i) => deviceIdOf(options.types, i, options.idPrefix));
  const incident = options.incident ? incidentCast(options.types, options.devices, options.idPrefix) : [];
  return { ids, incident, simulation, close: () => simulation.stop() };
}
