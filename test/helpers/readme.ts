/** Code blocks of README.md that tests run as written: each follows a `<!-- readme-test: NAME … -->` line. */
import { readFileSync } from 'node:fs';

const README = new URL('../../README.md', import.meta.url);

export function readmeBlock(name: string): string {
  const text = readFileSync(README, 'utf8');
  const marker = `<!-- readme-test: ${name} `;
  const at = text.indexOf(marker);
  if (at === -1) throw new Error(`README.md has no "${marker}…-->" line`);
  const m = /^[^\n]*\n```\w*\n([\s\S]*?)^```$/m.exec(text.slice(at));
  if (!m) throw new Error(`README.md: no code block right after "${marker}…-->"`);
  return m[1]!;
}
