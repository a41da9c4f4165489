/**
 * What the processes of one `--workers` gateway share about logins, through the primary (the
 * kernel hands each connection to any worker): which login codes are spent, and which sessions
 * logged out. A single process keeps both itself (`localLoginSync`).
 */
import type { Worker } from 'node:cluster';

/** Spent codes remembered at most (each only until it expires); past it, logins wait. */
const MAX_SPENT = 10_000;
const ASK_TIMEOUT_MS = 5000;

export type SpendResult = 'ok' | 'used' | 'busy' | 'unavailable';

export interface LoginSync {
  /** Claims a login code's nonce (valid until `until`): 'ok' the first time in every process. */
  spend(nonce: string, until: number): Promise<SpendResult>;
  /** Tells the other processes that a session logged out (its cookies all dead by `until`). */
  loggedOut(id: string, until: number): void;
  /** Logouts that other processes took. */
  onLoggedOut(listener: (id: string, until: number) => void): void;
}

/** The spent codes of one process (or of the primary, for its workers). */
export class SpentCodes {
  /** nonce → when its code expires. */
  private readonly spent = new Map<string, number>();

  spend(nonce: string, until: number, now = Date.now()): Exclude<SpendResult, 'unavailable'> {
    if (this.spent.has(nonce)) return 'used';
    for (const [k, t] of this.spent) if (t <= now) this.spent.delete(k);
    if (this.spent.size >= MAX_SPENT) return 'busy';
    this.spent.set(nonce, until);
    return 'ok';
  }
}

export function localLoginSync(): LoginSync {
  const spent = new SpentCodes();
  return {
    spend: (nonce, until) => Promise.resolve(spent.spend(nonce, until)),
    loggedOut: () => {},
    onLoggedOut: () => {},
  };
}

interface SpendAsk {
  type: 'gateway:login-spend';
  id: number;
  nonce: string;
  until: number;
}
interface SpendAnswer {
  type: 'gateway:login-spend';
  id: number;
  result: SpendResult;
}
interface LoggedOut {
  type: 'gateway:logged-out';
  session: string;
  until: number;
}

/** In a worker: asks the primary to spend codes, and hears of the other workers' logouts. */
export function workerLoginSync(): LoginSync {
  let next = 0;
  const waiting = new Map<number, (r: SpendResult) => void>();
  const listeners: ((id: string, until: number) => void)[] = [];
  process.on('message', (m: SpendAnswer | LoggedOut) => {
    if (m?.type === 'gateway:login-spend') {
      waiting.get(m.id)?.(m.result);
      waiting.delete(m.id);
    } else if (m?.type === 'gateway:logged-out') {
      for (const l of listeners) l(m.session, m.until);
    }
  });
  return {
    spend: (nonce, until) =>
      new Promise((resolve) => {
        const id = next++;
        const t = setTimeout(() => {
          waiting.delete(id);
          resolve('unavailable');
        }, ASK_TIMEOUT_MS);
        waiting.set(id, (r) => (clearTimeout(t), resolve(r)));
        if (!process.send?.({ type: 'gateway:login-spend', id, nonce, until } satisfies SpendAsk)) {
          clearTimeout(t);
          waiting.delete(id);
          resolve('unavailable');
        }
      }),
    loggedOut: (session, until) => {
      process.send?.({ type: 'gateway:logged-out', session, until } satisfies LoggedOut);
    },
    onLoggedOut: (l) => listeners.push(l),
  };
}

/** In the primary: the workers' shared spent codes, and logouts passed on to the other workers. */
export class PrimaryLoginRelay {
  private readonly spent = new SpentCodes();

  constructor(private readonly workers: () => Iterable<Worker>) {}

  /** Handles a worker's message; false when it is not about logins. */
  handle(from: Worker, m: SpendAsk | LoggedOut | { type?: unknown }): boolean {
    if (m?.type === 'gateway:login-spend') {
      const ask = m as SpendAsk;
      if (from.isConnected()) from.send({ type: 'gateway:login-spend', id: ask.id, result: this.spent.spend(ask.nonce, ask.until) } satisfies SpendAnswer);
      return true;
    }
    if (m?.type === 'gateway:logged-out') {
      for (const w of this.workers()) if (w !== from && w.isConnected()) w.send(m);
      return true;
    }
    return false;
  }
}
