/**
 * The README and the other docs link only to files in this repository, and each linked file
 * exists: a newcomer reading a clone (or the npm package) cannot follow a path outside it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

function docs(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.') || name === 'dist' || name === 'artifacts') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) docs(path, out);
    else if (name.endsWith('.md')) out.push(path);
  }
  return out;
}

describe('documentation links', () => {
  it.each(docs(ROOT).map((p) => relative(ROOT, p)))('%s links only to files inside the repository that exist', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const bad: string[] = [];
    // Markdown links to relative paths.
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (target === '' || /^[a-z]+:/i.test(target)) continue;
      const abs = resolve(dirname(join(ROOT, file)), target);
      if (!abs.startsWith(ROOT)) bad.push(`${target} (outside the repository)`);
      else if (!existsSync(abs)) bad.push(`${target} (missing)`);
    }
    // Paths in code spans that climb out of the repository.
    for (const m of text.matchAll(/`(\.\.\/[^`\s]+)`/g)) {
      const abs = resolve(dirname(join(ROOT, file)), m[1]!);
      if (!abs.startsWith(ROOT)) bad.push(`${m[1]} (outside the repository)`);
    }
    expect(bad).toEqual([]);
  });
});
