/**
 * Child processes of the benchmark: started pinned to a core (taskset, when there is one), watched
 * for a ready line, read from /proc (RSS, CPU time), and stopped by their PID (SIGTERM, then
 * SIGKILL after a grace period). Every wait here has a time limit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasTaskset, killServices } from '../services/index.js';
import type { Command, Report } from './protocol.js';

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export class Child {
  private out = '';
  private err = '';
  private readonly lineWaiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  private readonly reports: Report[] = [];
  private readonly reportWaiters: { type: Report['type']; resolve: (r: Report) => void }[] = [];
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout?.on('data', (b: Buffer) => {
      this.out = (this.out + b.toString()).slice(-20_000);
      for (let i = this.lineWaiters.length - 1; i >= 0; i--) {
        const w = this.lineWaiters[i]!;
        const m = w.re.exec(this.out);
        if (m) {
          this.lineWaiters.splice(i, 1);
          w.resolve(m);
        }
      }
    });
    proc.stderr?.on('data', (b: Buffer) => (this.err = (this.err + b.toString()).slice(-8_000)));
    proc.on('message', (r: Report) => {
      const i = this.reportWaiters.findIndex((w) => w.type === r.type || r.type === 'error');
      if (i >= 0) this.reportWaiters.splice(i, 1)[0]!.resolve(r);
      else this.reports.push(r);
    });
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** What the process printed on stderr lately (for error messages). */
  get stderrTail(): string {
    return this.err.trim().split('\n').slice(-5).join(' | ').slice(0, 600);
  }

  waitLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const m = re.exec(this.out);
    if (m) return Promise.resolve(m);
    return this.limit(new Promise((resolve) => this.lineWaiters.push({ re, resolve })), timeoutMs, `a line matching ${re}`);
  }

  send(c: Command): void {
    if (this.proc.connected) this.proc.send(c);
  }

  /** The next report of this type (an `error` report rejects). */
  async next<T extends Report['type']>(type: T, timeoutMs: number): Promise<Extract<Report, { type: T }>> {
    const i = this.reports.findIndex((r) => r.type === type || r.type === 'error');
    const r = i >= 0 ? this.reports.splice(i, 1)[0]! : await this.limit(new Promise<Report>((resolve) => this.reportWaiters.push({ type, resolve })), timeoutMs, `a "${type}" report`);
    if (r.type === 'error') throw new Error(r.message);
    return r as Extract<Report, { type: T }>;
  }

  private limit<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms${this.alive ? '' : ` (it exited: ${this.proc.exitCode ?? this.proc.signalCode})`}${this.stderrTail ? `; stderr: ${this.stderrTail}` : ''}`)), timeoutMs);
      const gone = this.exited.then(() => {
        // Let a last report or line that raced the exit through first.
        setTimeout(() => reject(new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${what}${this.stderrTail ? `; stderr: ${this.stderrTail}` : ''}`)), 50);
      });
      void gone;
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e as Error);
        },
      );
    });
  }

  /** Signals this child by its PID (nothing when it is gone already). */
  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // Exited between the check and the signal.
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    if (this.proc.connected) this.proc.send({ cmd: 'exit' } satisfies Command);
    else this.signal('SIGTERM');
    const term = setTimeout(() => this.signal('SIGTERM'), Math.min(500, graceMs));
    const kill = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

export interface StartOptions {
  /** CPU core to pin to (taskset -c), when taskset exists. */
  core?: number;
  ipc?: boolean;
  env?: Record<string, string>;
  cwd?: string;
}

/** Every child still running, so that an interrupted run can stop them all by PID. */
const running = new Set<Child>();

/** SIGKILLs every child this process started that is still running, services included (by PID). */
export function killAll(): void {
  for (const c of running) c.signal('SIGKILL');
  killServices();
}

export function start(name: string, command: string, args: string[], o: StartOptions = {}): Child {
  const pinned = hasTaskset && o.core !== undefined;
  // taskset execs the command, so the PID is the command's own.
  const proc = spawn(pinned ? 'taskset' : command, pinned ? ['-c', String(o.core), command, ...args] : args, {
    stdio: ['ignore', 'pipe', 'pipe', ...(o.ipc ? (['ipc'] as const) : [])],
    env: { ...process.env, ...o.env },
    cwd: o.cwd,
  });
  const child = new Child(name, proc);
  running.add(child);
  void child.exited.then(() => running.delete(child));
  return child;
}

/** Resident set size of a process in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** User + system CPU seconds a process has used. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * Context switches of a process's main thread so far (voluntary + involuntary, /proc/PID/status):
 * for a Node process, about how many times its event loop slept and was woken.
 */
export function contextSwitches(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const v = /voluntary_ctxt_switches:\s+(\d+)/.exec(status);
    const n = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status);
    return v && n ? Number(v[1]) + Number(n[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds of a process and every process under it (a gateway with --workers). */
export function treeCpuSeconds(pid: number): number {
  return descendants(pid).reduce((sum, p) => sum + (cpuSeconds(p) || 0), cpuSeconds(pid));
}

/** PIDs of every process under `pid`. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone since readdir.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) if (pp === p) (out.push(child), walk(child));
  };
  walk(pid);
  return out;
}

/** CPU seconds of every user-space process now (kernel threads left out), by PID. */
export function allProcessCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(name);
      if (pid === 2 || f[1] === '2') continue;
      out.set(pid, (Number(f[11]) + Number(f[12])) / CLOCK_TICKS);
    } catch {
      // Gone since readdir.
    }
  }
  return out;
}

/** Cores used between two allProcessCpu() snapshots by processes other than `ours`. */
export function otherCpu(before: Map<number, number>, after: Map<number, number>, ours: number[], seconds: number): number {
  let sum = 0;
  for (const [pid, t] of after) if (!ours.includes(pid)) sum += t - (before.get(pid) ?? 0);
  return sum / seconds;
}

/** GET on 127.0.0.1, body as text; rejects on a non-2xx status or after timeoutMs. */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`GET ${path} → ${res.statusCode}: ${text.slice(0, 200)}`))));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How fast each core is right now: core-probe.ts pinned to each core at once (ms, lower is faster).
 * On a shared virtual machine the cores need not be equal, nor stay the same from minute to
 * minute, so every step records this next to its figures.
 */
export async function coreSpeeds(cores: number[]): Promise<number[]> {
  const probe = join(dirname(fileURLToPath(import.meta.url)), 'core-probe.js');
  if (!hasTaskset) return cores.map(() => NaN);
  const runs = cores.map(
    (core) =>
      new Promise<number>((resolve) => {
        const p = spawn('taskset', ['-c', String(core), process.execPath, probe], { stdio: ['ignore', 'pipe', 'ignore'] });
        let out = '';
        p.stdout.on('data', (b: Buffer) => (out += b.toString()));
        const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
        p.on('exit', () => {
          clearTimeout(t);
          resolve(Number(out.trim().split(' ')[0]) || NaN);
        });
      }),
  );
  return Promise.all(runs);
}
