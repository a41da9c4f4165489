/**
 * Query parameters a route does not take are refused: a filter silently ignored would answer a
 * question the caller did not ask. `token` (read by the operator check) and `_` (the usual
 * cache-buster) are taken everywhere.
 */
import { ApiError } from './errors.js';

/** Throws 400 BAD_QUERY for a parameter not in `names`; `takes` says what the route does take. */
export function onlyParams(q: URLSearchParams, names: readonly string[], takes: string): void {
  for (const name of q.keys()) {
    if (name !== 'token' && name !== '_' && !names.includes(name)) throw new ApiError(400, 'BAD_QUERY', `unknown parameter "${name.slice(0, 64)}": ${takes}`);
  }
}
