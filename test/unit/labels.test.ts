/** Device label rules (gateway/registry/labels.ts): what a label may be, and the label=key=value filter. */
import { describe, expect, it } from 'vitest';
import { LabelError, matchesLabels, MAX_LABELS, parseLabelFilter, validateLabels } from '../../gateway/registry/labels.js';

describe('labels', () => {
  it('takes keys and values within the documented charset and limits, sorted by key', () => {
    expect(validateLabels({ site: 'north', 'rack.no': '12', zone_a: 'b-1:x/y@z' })).toEqual({ 'rack.no': '12', site: 'north', zone_a: 'b-1:x/y@z' });
    expect(Object.keys(validateLabels({ ['k'.repeat(63)]: 'v'.repeat(128) }))).toHaveLength(1);
    expect(validateLabels({})).toEqual({});
  });

  it.each([
    ['not an object', 'site=north'],
    ['an array', ['site=north']],
    ['null', null],
    ['a key with a space', { 'my site': 'x' }],
    ['a key starting with a dot', { '.site': 'x' }],
    ['a key over 63 characters', { ['k'.repeat(64)]: 'x' }],
    ['an empty value', { site: '' }],
    ['a value with =', { site: 'a=b' }],
    ['a value with a comma', { site: 'a,b' }],
    ['a value over 128 characters', { site: 'v'.repeat(129) }],
    ['a number value', { floor: 3 }],
    ['too many labels', Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, 'v']))],
  ])('refuses %s with BAD_LABELS', (_what, labels) => {
    expect(() => validateLabels(labels)).toThrow(LabelError);
    try {
      validateLabels(labels);
    } catch (err) {
      expect((err as LabelError).code).toBe('BAD_LABELS');
    }
  });

  it('parses key=value filters and matches them all (AND)', () => {
    expect(parseLabelFilter('site=north')).toEqual(['site', 'north']);
    for (const bad of ['site', '=north', 'site=', 'site=a=b', 'si te=x']) expect(() => parseLabelFilter(bad), bad).toThrow(LabelError);
    const labels = { site: 'north', role: 'pump' };
    expect(matchesLabels(labels, [['site', 'north']])).toBe(true);
    expect(matchesLabels(labels, [['site', 'north'], ['role', 'pump']])).toBe(true);
    expect(matchesLabels(labels, [['site', 'north'], ['role', 'fan']])).toBe(false);
    expect(matchesLabels(undefined, [['site', 'north']])).toBe(false);
    expect(matchesLabels(undefined, [])).toBe(true);
  });
});
