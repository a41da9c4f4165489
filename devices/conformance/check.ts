/** A conformance check: one rule of devices/PROTOCOL.md, run against a live gateway. */
import type { Context } from './context.js';

export interface Check {
  /** Unique, stable: what --only matches. */
  name: string;
  /** The PROTOCOL.md section it checks. */
  spec: string;
  /** Why it cannot run with these options (it is then skipped), or undefined. */
  skip?(ctx: Context): string | undefined;
  /** Resolves (optionally with a note) on pass; throws (CheckFailed) with the reason on failure. */
  run(ctx: Context): Promise<string | void>;
}
