/**
 * A service's process: spawned (pinned to a core with taskset when asked and possible), its output
 * kept for error messages, stopped by its PID. Every service started here is remembered until it
 * exits, so an interrupted bench run can kill what it started (killServices) and nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hasTaskset } from './programs.js';

export interface SpawnOptions {
  /** CPU core to pin to (taskset -c), when taskset exists. */
  core?: number;
  env?: Record<string, string>;
}

const running = new Set<ServiceProcess>();

export class ServiceProcess {
  private out = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    bin: string,
    args: string[],
    o: SpawnOptions = {},
  ) {
    const pinned = hasTaskset && o.core !== undefined;
    // taskset execs the command, so the PID is the command's own.
    this.proc = spawn(pinned ? 'taskset' : bin, pinned ? ['-c', String(o.core), bin, ...args] : args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...o.env },
    });
    const keep = (b: Buffer) => (this.out = (this.out + b.toString()).slice(-20_000));
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    running.add(this);
    this.exited = new Promise((resolve) => {
      const gone = () => {
        running.delete(this);
        resolve();
      };
      this.proc.once('exit', gone);
      // A program that cannot be spawned emits 'error' and no 'exit'.
      this.proc.once('error', (err) => {
        this.out += `\n${this.name}: ${err.message}`;
        if (this.proc.pid === undefined) gone();
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** What the process printed lately (stdout and stderr), for error messages. */
  output(): string {
    return this.out;
  }

  /** The last lines of output on one line. */
  tail(): string {
    return this.out.trim().split('\n').slice(-5).join(' | ').slice(0, 600);
  }

  /** Signals the process by its PID (nothing when it is gone already). */
  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // Exited between the check and the signal.
    }
  }

  /** SIGTERM (after SIGCONT: a paused process cannot act on it), SIGKILL after `graceMs`; resolves when gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const kill = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(kill);
  }

  /** SIGKILL; resolves when gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** SIGKILLs every service process started here that still runs (by PID): for a run interrupted by a signal. */
export function killServices(): void {
  for (const p of running) p.signal('SIGKILL');
}

/**
 * Polls `check` every `everyMs` until it returns true; rejects after `timeoutMs` or as soon as
 * `p` exits, with its output tail in the message.
 */
export async function waitUntil(p: ServiceProcess, check: () => Promise<boolean>, what: string, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!p.alive) throw new Error(`${p.name} exited (${p.proc.exitCode ?? p.proc.signalCode ?? 'not started'}) before ${what}: ${p.tail()}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${p.name}: no ${what} within ${timeoutMs} ms: ${p.tail()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
