/**
 * Device labels (`site=north`): the rules every label passes, wherever it comes from (the
 * management API, the registry file), and the `label=key=value` filter of `GET /api/devices`.
 * Keys and values avoid `=`, `,`, spaces and quotes, so a filter in a URL needs no escaping rules.
 */

/** A key: 1–63 characters of `a-z A-Z 0-9 . _ -`, starting with a letter or digit. */
export const LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** A value: 1–128 characters of `a-z A-Z 0-9 . _ - : / @`. */
export const LABEL_VALUE_PATTERN = /^[A-Za-z0-9._:/@-]{1,128}$/;
export const MAX_LABELS = 32;
export const LABEL_RULE =
  `labels are an object of at most ${MAX_LABELS} "key": "value" strings; a key is 1–63 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, a value 1–128 characters of A-Z a-z 0-9 . _ - : / @`;

/** A label set or filter that breaks the rules (code BAD_LABELS); the message says which one. */
export class LabelError extends Error {
  override name = 'LabelError';
  readonly code = 'BAD_LABELS';
}

/** Checks a labels object from outside; returns a plain copy with keys in order. */
export function validateLabels(x: unknown): Record<string, string> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new LabelError(`labels must be an object: ${LABEL_RULE}`);
  const keys = Object.keys(x).sort();
  if (keys.length > MAX_LABELS) throw new LabelError(`${keys.length} labels: at most ${MAX_LABELS}`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = (x as Record<string, unknown>)[k];
    if (!LABEL_KEY_PATTERN.test(k)) throw new LabelError(`label key ${JSON.stringify(k.slice(0, 80))} is not valid: ${LABEL_RULE}`);
    if (typeof v !== 'string' || !LABEL_VALUE_PATTERN.test(v)) throw new LabelError(`label ${k}'s value ${JSON.stringify(v)} is not valid: ${LABEL_RULE}`);
    out[k] = v;
  }
  return out;
}

/** One `label=` filter of `GET /api/devices`: `key=value`. */
export function parseLabelFilter(raw: string): [key: string, value: string] {
  const eq = raw.indexOf('=');
  const key = eq === -1 ? raw : raw.slice(0, eq);
  const value = eq === -1 ? '' : raw.slice(eq + 1);
  if (eq === -1 || !LABEL_KEY_PATTERN.test(key) || !LABEL_VALUE_PATTERN.test(value)) {
    throw new LabelError(`label filter ${JSON.stringify(raw.slice(0, 200))} must be key=value (e.g. label=site=north): ${LABEL_RULE}`);
  }
  return [key, value];
}

/** Whether `labels` has every key=value of `filters` (AND). */
export function matchesLabels(labels: Readonly<Record<string, string>> | undefined, filters: readonly (readonly [string, string])[]): boolean {
  for (const [k, v] of filters) if (labels?.[k] !== v) return false;
  return true;
}
