/** Bounded waiting for the conformance checks: every wait ends, with a message naming what it waited for. */

export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

/** Fails the check with `message` unless `ok`. */
export function expectThat(ok: boolean, message: string): asserts ok {
  if (!ok) throw new CheckFailed(message);
}

/** Polls `check` until it returns a truthy value; fails the check after timeoutMs. */
export async function waitUntil<T>(check: () => T, what: string, timeoutMs: number): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new CheckFailed(`no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
