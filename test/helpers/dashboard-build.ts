/** The built dashboard the browser tests serve: built once, and again only when a source is newer. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';
import { ROOT } from './gateway.js';

export const DASHBOARD = join(ROOT, 'dashboard');

/** Newest modification time under `path` (files only). */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

/** Builds dashboard/dist unless it is newer than every source. */
export async function buildDashboard(): Promise<void> {
  const index = join(DASHBOARD, 'dist/index.html');
  const sources = Math.max(newest(join(DASHBOARD, 'src')), newest(join(DASHBOARD, 'index.html')), newest(join(DASHBOARD, 'vite.config.ts')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  await build({ root: DASHBOARD, logLevel: 'error' });
}
