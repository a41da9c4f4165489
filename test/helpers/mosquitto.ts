/** A real Mosquitto broker on a free port in a temp folder, for bridge tests (simulator/services launches it). Stopped by its PID. */
import type { ChildProcess } from 'node:child_process';
import { startMosquitto as launch } from '../../simulator/services/index.js';
import { requireProgram } from './services.js';

export interface Mosquitto {
  port: number;
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export const mosquittoPath = (): string | undefined => requireProgram('mosquitto', 'mosquitto');

/** `persistenceDir`: sessions survive a stop and a start on the same port (the caller removes the folder). */
export async function startMosquitto(port?: number, persistenceDir?: string): Promise<Mosquitto> {
  // Tests hold many QoS 1 messages for devices that are offline for a while.
  const m = await launch({ port, maxQueuedMessages: 100_000, tempPrefix: 'gw-test-', persistenceDir });
  return { port: m.port, url: m.url, proc: m.process.proc, stop: () => m.stop() };
}
