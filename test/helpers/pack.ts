/**
 * The package as users get it: `npm pack` of this checkout, installed into an empty project the
 * way a user installs a tarball. Every npm run is bounded in time.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ROOT } from './gateway.js';

export interface Run {
  code: number;
  out: string;
}

/** Runs a program to its end; killed after timeoutMs. Never throws: the code says how it went. */
export function runProgram(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

const npm = (args: string[], cwd: string, timeoutMs = 120_000) => runProgram('npm', [...args, '--no-audit', '--no-fund'], { cwd, timeoutMs, env: { npm_config_update_notifier: 'false' } });

/** What a copy of the checkout leaves out: built output, data, and the dependencies (linked instead). */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', '.data', 'artifacts', 'coverage']);

/**
 * `npm pack` (its prepack builds dist/ and the dashboard) into `dest`; the tarball's path. It packs
 * a copy of the checkout in `dest`, so its build never rewrites this checkout's dashboard/dist
 * under a browser test that serves it.
 */
export async function packCheckout(dest: string): Promise<string> {
  const src = join(dest, 'checkout');
  cpSync(ROOT, src, { recursive: true, filter: (from) => !NOT_COPIED.has(basename(from)) });
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  const r = await npm(['pack', '--pack-destination', dest], src);
  if (r.code !== 0) throw new Error(`npm pack failed:\n${r.out}`);
  // The last line of npm pack's report is the file name (the build's output comes before it).
  const name = r.out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[\w.@-]+\.tgz$/.test(l))
    .pop();
  if (!name) throw new Error(`npm pack named no tarball:\n${r.out}`);
  return join(dest, name);
}

const NO_REGISTRY = /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|ENETUNREACH/;

/**
 * Installs the tarball into `app` (an empty folder) as a user does: `npm install <tgz>`, taking what
 * it can from the npm cache. The dependencies' metadata still comes from the registry; when it
 * cannot be reached, the same install runs offline from this checkout's package-lock.json (the
 * tarballs `npm ci` put in the cache), so the test also runs on a machine without the registry.
 * Says which way it went.
 */
export async function installTarball(app: string, tgz: string): Promise<{ how: 'registry' | 'offline-lockfile'; out: string }> {
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // One quick retry: a missing registry should fall through to the offline way in seconds, not minutes.
  const online = await npm(['install', '--prefer-offline', '--fetch-retries=1', '--fetch-retry-mintimeout=1000', '--fetch-retry-maxtimeout=3000', tgz], app);
  if (online.code === 0) return { how: 'registry', out: online.out };
  if (!NO_REGISTRY.test(online.out)) throw new Error(`npm install ${tgz} failed:\n${online.out}`);
  writeLockfile(app, tgz);
  const offline = await npm(['ci', '--offline', '--replace-registry-host=never'], app);
  if (offline.code !== 0) throw new Error(`npm install failed without the registry (${online.out.split('\n')[0]}), and npm ci --offline from the lockfile too:\n${offline.out}`);
  return { how: 'offline-lockfile', out: offline.out };
}

/** A lockfile for `app` that pins the tarball and this checkout's locked runtime dependencies. */
function writeLockfile(app: string, tgz: string): void {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const spec = `file:${tgz}`;
  const packages: Record<string, unknown> = { '': { name: 'app', dependencies: { [pkg.name]: spec } } };
  packages[`node_modules/${pkg.name}`] = {
    version: pkg.version,
    resolved: spec,
    integrity: 'sha512-' + createHash('sha512').update(readFileSync(tgz)).digest('base64'),
    license: pkg.license,
    dependencies: pkg.dependencies,
    bin: pkg.bin,
    engines: pkg.engines,
  };
  // This checkout's lockfile has no `resolved` URLs; without them npm would ask the registry for
  // each package's metadata. With them, `npm ci --offline` takes the tarballs from the cache.
  for (const [path, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean; name?: string; version: string; resolved?: string }>)) {
    if (!path.startsWith('node_modules/') || entry.dev) continue;
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const file = `${name.split('/').pop()}-${entry.version}.tgz`;
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${file}`, ...entry };
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { [pkg.name]: spec } }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }));
}
