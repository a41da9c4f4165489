/** The simulator's programmatic API (the `simulate` command is cli.ts). */
export { startDemoFleet, type DemoFleet, type DemoFleetOptions } from './demo.js';
export { Simulation, runSimulation, type SimulationHooks, type StatusSnapshot } from './run.js';
export { parseOptions, simulatorOptions, helpText, OptionError, type SimulatorOptions, type OutageWindow, type TransportName } from './options.js';
export { buildSummary, formatSummary, type Summary } from './summary.js';
export type { FleetCounters } from './counters.js';
export { deviceIdOf } from './ids.js';
export { chaosId } from './malformed.js';
export { createModel, MODELED_TYPES, type ModeledType, type SensorModel } from './models/index.js';
export { incidentCast, incidentRole, INCIDENT_TIMELINE, type IncidentPart, type IncidentRole } from './incident.js';
