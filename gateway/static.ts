/**
 * Serves the built dashboard (dashboard/dist) at /: index.html never cached, hashed assets cached
 * for a year. Files are read once at start; nothing on disk is reachable but what the build wrote.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reply, RequestInfo } from './uws.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

interface StaticFile {
  body: Buffer;
  headers: Record<string, string>;
}

/** dashboard/dist from the source tree (gateway/) or the build (dist/gateway/). */
export function defaultDashboardDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['../dashboard/dist', '../../dashboard/dist']) {
    const dir = join(here, up);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return join(here, '../../dashboard/dist');
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

export class StaticFiles {
  private readonly files = new Map<string, StaticFile>();
  readonly available: boolean;

  constructor(readonly dir: string) {
    this.available = existsSync(join(dir, 'index.html'));
    if (!this.available) return;
    for (const path of walk(dir)) {
      const url = '/' + relative(dir, path).split('\\').join('/');
      const body = readFileSync(path);
      const hashed = url.startsWith('/assets/');
      this.files.set(url, {
        body,
        headers: {
          'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
          'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
          etag: `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"`,
          'x-content-type-options': 'nosniff',
        },
      });
    }
  }

  /** Answers GET/HEAD for a dashboard file; false when the path is not one. */
  serve(req: RequestInfo, reply: Reply): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (!this.available) {
      if (req.path !== '/') return false;
      reply.send(503, { 'content-type': 'text/plain; charset=utf-8' }, 'The dashboard is not built. Run `npm run build` (or `npm run demo`), then reload.\n');
      return true;
    }
    const f = this.files.get(req.path === '/' ? '/index.html' : req.path);
    if (!f) return false;
    if (req.header('if-none-match') === f.headers.etag) {
      reply.send(304, { etag: f.headers.etag!, 'cache-control': f.headers['cache-control']! });
      return true;
    }
    // For HEAD the reply sends the headers and this body's length, not the body.
    reply.send(200, f.headers, f.body);
    return true;
  }
}
