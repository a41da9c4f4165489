/**
 * devices/api/json.ts is the JSON contract of the HTTP API and /live. The type checker holds the
 * gateway's answers to it (they are built with `satisfies`); this holds the module itself to
 * "types only", so importing it costs a device, the SDK or the dashboard nothing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as contract from '../../devices/api/json.js';

describe('API contract module', () => {
  it('exports no runtime value', () => {
    expect(Object.keys(contract)).toEqual([]);
  });

  it('imports nothing but types, and nothing from outside devices/', () => {
    const source = readFileSync(new URL('../../devices/api/json.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/^import\s.*?from\s+'([^']+)';$/gms)].map((m) => m[0]);
    expect(imports.length).toBeGreaterThan(0);
    for (const line of imports) {
      expect(line).toMatch(/^import type /);
      expect(line).not.toMatch(/from '\.\.\/\.\.\//);
    }
  });
});
