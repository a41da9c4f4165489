/**
 * Outside services on 127.0.0.1 for the tests (test/helpers) and the bench (simulator/bench): free
 * ports, program lookup, and influxd and Mosquitto launchers, each in a temp folder and stopped by
 * PID. It lives under simulator/ because the bench is built from there (tsconfig.build.json), and
 * tests may import anything; the gateway never needs it.
 */
export { freePort, freePorts, canConnect } from './ports.js';
export { findProgram, versionOf, hasTaskset, tempDir } from './programs.js';
export { ServiceProcess, killServices, waitUntil, type SpawnOptions } from './process.js';
export { influxConf, startInfluxd, InfluxdService, type InfluxdOptions } from './influxd.js';
export { mosquittoConf, startMosquitto, type MosquittoOptions, type MosquittoService } from './mosquitto.js';
