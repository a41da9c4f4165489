/** A real Mosquitto broker on a free port in a temp folder, for bridge tests. Stopped by its PID. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './gateway.js';
import { freePort } from './ports.js';
import { requireProgram } from './services.js';
import { waitFor } from './wait.js';

export interface Mosquitto {
  port: number;
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export const mosquittoPath = (): string | undefined => requireProgram('mosquitto', 'mosquitto');

export async function startMosquitto(port?: number): Promise<Mosquitto> {
  const bin = mosquittoPath();
  if (!bin) throw new Error('mosquitto is not installed (apt-get install -y mosquitto)');
  port ??= await freePort();
  const dir = tempDir('mosquitto-');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'max_queued_messages 100000', 'log_dest none', ''].join('\n'));
  const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  await waitFor(
    () =>
      new Promise<boolean>((resolve, reject) => {
        if (proc.exitCode !== null) return reject(new Error(`mosquitto exited: ${err}`));
        const s = connect(port!, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    'mosquitto to listen',
    10_000,
    50,
  );
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    proc,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
