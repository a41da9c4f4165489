/**
 * The rules one device runs, compiled for the per-reading path: numbers in flat fields, and a
 * channel index (first rule per channel, then a chain), so a reading costs one lookup plus the
 * rules on its own channel, and a device without rules costs one comparison.
 */
import type { AlarmRule } from '../../devices/api/json.js';

export const Kind = { Above: 0, Below: 1, Outside: 2, Rate: 3, True: 4, Silent: 5 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface CompiledRule {
  readonly rule: AlarmRule;
  readonly kind: Kind;
  readonly channel: number;
  /** threshold, min, or perSecond. */
  readonly a: number;
  /** max (outside). */
  readonly b: number;
  readonly hysteresis: number;
  readonly forMs: number;
}

export class RuleSet {
  /** First rule index per channel (-1: none). */
  readonly first = new Int16Array(256).fill(-1);
  /** Next rule index on the same channel (-1: last). */
  readonly next: Int16Array;
  /** Indexes of `silent` rules (the sweep's). */
  readonly silent: number[] = [];
  readonly rules: CompiledRule[];
  /** The rules' numbers in flat arrays, by rule index: what the per-reading loop reads. */
  readonly kind: Uint8Array;
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly hysteresis: Float64Array;
  readonly forMs: Float64Array;

  constructor(rules: readonly AlarmRule[]) {
    this.rules = rules.map(compile);
    const n = this.rules.length;
    this.kind = Uint8Array.from(this.rules, (r) => r.kind);
    this.a = Float64Array.from(this.rules, (r) => r.a);
    this.b = Float64Array.from(this.rules, (r) => r.b);
    this.hysteresis = Float64Array.from(this.rules, (r) => r.hysteresis);
    this.forMs = Float64Array.from(this.rules, (r) => r.forMs);
    this.next = new Int16Array(n).fill(-1);
    // Chained back to front so each channel's rules run in the given order.
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const r = this.rules[i]!;
      if (r.kind === Kind.Silent) {
        this.silent.unshift(i);
        continue;
      }
      this.next[i] = this.first[r.channel]!;
      this.first[r.channel] = i;
    }
  }

  get size(): number {
    return this.rules.length;
  }
}

export const NO_RULES = new RuleSet([]);

function compile(rule: AlarmRule): CompiledRule {
  const c = rule.condition;
  switch (c.kind) {
    case 'above':
    case 'below':
      return { rule, kind: c.kind === 'above' ? Kind.Above : Kind.Below, channel: c.channel, a: c.threshold, b: 0, hysteresis: c.hysteresis ?? 0, forMs: c.forMs ?? 0 };
    case 'outside':
      return { rule, kind: Kind.Outside, channel: c.channel, a: c.min, b: c.max, hysteresis: c.hysteresis ?? 0, forMs: c.forMs ?? 0 };
    case 'rate':
      return { rule, kind: Kind.Rate, channel: c.channel, a: c.perSecond, b: 0, hysteresis: 0, forMs: 0 };
    case 'true':
      return { rule, kind: Kind.True, channel: c.channel, a: 0, b: 0, hysteresis: 0, forMs: 0 };
    case 'silent':
      return { rule, kind: Kind.Silent, channel: -1, a: 0, b: 0, hysteresis: 0, forMs: c.forMs };
  }
}
