/**
 * Labels as the operator types them: `site=north, role=pump` (commas or spaces between pairs), for
 * the fleet page's label filter (every pair must match) and the admin view's label fields. The
 * gateway checks the full rules (README "Managing devices"); this only splits and reports what
 * cannot be a pair.
 */

export type LabelPairs = [key: string, value: string][];

/** Pairs from text, or the first piece that is not `key=value`. */
export function parseLabels(text: string): { pairs: LabelPairs } | { error: string } {
  const pairs: LabelPairs = [];
  for (const piece of text.split(/[,\s]+/)) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    if (eq <= 0 || eq === piece.length - 1) return { error: `"${piece}" is not key=value` };
    pairs.push([piece.slice(0, eq), piece.slice(eq + 1)]);
  }
  return { pairs };
}

export function labelsText(labels: Readonly<Record<string, string>> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

export function matchesLabels(labels: Readonly<Record<string, string>> | undefined, pairs: LabelPairs): boolean {
  for (const [k, v] of pairs) if (labels?.[k] !== v) return false;
  return true;
}
