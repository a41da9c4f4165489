/**
 * A throwaway Mosquitto (Debian package `mosquitto`) on a free 127.0.0.1 port in its own temp
 * folder, never the system service: the external broker of the bridge and cluster tests, and the
 * bench's MQTT baseline.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canConnect, freePort } from './ports.js';
import { ServiceProcess, waitUntil } from './process.js';
import { findProgram, tempDir } from './programs.js';

export interface MosquittoOptions {
  /** Listen here (default: a free port). */
  port?: number;
  /** CPU core to pin it to (the bench's server core). */
  core?: number;
  /** Mosquitto's `max_queued_messages` (QoS 1/2 messages queued per client); its default (1000) when unset. */
  maxQueuedMessages?: number;
  tempPrefix?: string;
  /**
   * Keep sessions (clean=false subscriptions, queued messages) in this folder across a restart on
   * the same port (SIGTERM saves them). The caller owns and removes the folder. Default: no persistence.
   */
  persistenceDir?: string;
  /** How long it may take to listen (default 10 s). */
  readyTimeoutMs?: number;
}

/** mosquitto.conf for an anonymous broker on 127.0.0.1 without persistence or logs. */
export function mosquittoConf(port: number, maxQueuedMessages?: number, persistenceDir?: string): string {
  const persistence = persistenceDir === undefined ? ['persistence false'] : ['persistence true', `persistence_location ${persistenceDir}/`];
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', ...persistence];
  if (maxQueuedMessages !== undefined) lines.push(`max_queued_messages ${maxQueuedMessages}`);
  return [...lines, 'log_dest none', ''].join('\n');
}

export interface MosquittoService {
  port: number;
  /** mqtt://127.0.0.1:port */
  url: string;
  dir: string;
  process: ServiceProcess;
  readonly pid: number;
  /** SIGTERM (SIGKILL after graceMs), waits for the exit, removes the temp folder. */
  stop(graceMs?: number): Promise<void>;
}

export async function startMosquitto(o: MosquittoOptions = {}): Promise<MosquittoService> {
  const bin = findProgram('mosquitto');
  if (!bin) throw new Error('mosquitto is not installed (Debian package mosquitto: apt-get install -y mosquitto)');
  const port = o.port ?? (await freePort());
  const dir = tempDir(`${o.tempPrefix ?? 'svc-'}mosquitto-`);
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, mosquittoConf(port, o.maxQueuedMessages, o.persistenceDir));
  const p = new ServiceProcess('mosquitto', bin, ['-c', conf], { core: o.core });
  const stop = async (graceMs = 5000) => {
    await p.stop(graceMs);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(p, () => canConnect(port), `listener on port ${port}`, o.readyTimeoutMs ?? 10_000);
  } catch (err) {
    await p.kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    process: p,
    get pid() {
      return p.pid;
    },
    stop,
  };
}
