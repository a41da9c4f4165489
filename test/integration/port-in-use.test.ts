/**
 * A second gateway on an HTTP port already in use must fail to start with one clear line naming
 * the port and the flag (uWS sets SO_REUSEPORT, so without care it would start and split the
 * connections at random with the first), while the workers of one --workers gateway still share it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gatewayArgs, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

const running: ChildGateway[] = [];
afterEach(async () => {
  for (const g of running.splice(0)) await g.stop();
});

/** The first gateway, on a port named on the command line: a port the kernel picked (--port 0) is never shared by SO_REUSEPORT, which would hide the defect. */
async function first(...extra: string[]): Promise<ChildGateway> {
  const g = await spawnGateway(gatewayArgs(tempDir('port-a-'), '--port', String(await freePort()), ...extra));
  running.push(g);
  return g;
}

/** Starts a gateway expected to fail; resolves with its output. */
async function refused(port: number, ...extra: string[]): Promise<string> {
  const started = spawnGateway(gatewayArgs(tempDir('port-b-'), '--port', String(port), ...extra)).then((g) => {
    running.push(g);
    return '';
  });
  const err = await started.then(
    () => undefined,
    (e: Error) => e.message,
  );
  expect(err, 'the second gateway started on a port in use').toBeDefined();
  return err!;
}

describe('a port already in use', () => {
  it('a second gateway fails with LISTEN_FAILED naming the port and --port; the first keeps its devices', async () => {
    const a = await first();
    const out = await refused(a.port);
    expect(out).toMatch(/exited with 1/);
    expect(out).toContain(`[LISTEN_FAILED]`);
    expect(out).toContain(`127.0.0.1:${a.port}`);
    expect(out).toContain('--port');
    // One line, no stack trace.
    expect(out).not.toMatch(/\n\s+at /);
    expect((await a.api('/api/devices')).status).toBe(200);
  });

  it("a --workers gateway refuses the port another --workers gateway's workers share", async () => {
    const a = await first('--workers', '2');
    const out = await refused(a.port, '--workers', '2');
    expect(out).toContain('[LISTEN_FAILED]');
    expect(out).toContain('--port');
  });

  it("a single gateway refuses the port a --workers gateway's workers share", async () => {
    const a = await first('--workers', '2');
    const out = await refused(a.port);
    expect(out).toContain('[LISTEN_FAILED]');
  });
});
