/**
 * A full data disk (issue 13): the gateway runs as its CLI on a real 1 MiB tmpfs that the test fills
 * to the last byte, so the cursor file and the command journal meet the kernel's own short writes
 * and ENOSPC. Storage is the in-memory store, which stays up throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { api, deviceToken, FLEET_KEY, OPERATOR_TOKEN, spawnGateway, type ChildGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { canMountSmallDisk, mountSmallDisk, type SmallDisk } from '../helpers/small-disk.js';
import { waitFor } from '../helpers/wait.js';

const mountable = canMountSmallDisk();
let disk: SmallDisk | undefined;
let child: ChildGateway | undefined;
const clients: DeviceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await child?.stop('SIGKILL');
  child = undefined;
  disk?.destroy();
  disk = undefined;
});

function gateway(dir: string, port = 0): Promise<ChildGateway> {
  return spawnGateway(['--host', '127.0.0.1', '--port', String(port), '--data-dir', dir, '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN, '--ack-interval', '20']);
}

async function readyz(g: ChildGateway): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const res = await fetch(g.http + '/readyz', { headers: { connection: 'close' } });
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
}

async function metric(g: ChildGateway, line: string): Promise<number> {
  const text = await (await fetch(g.http + '/metrics', { headers: { connection: 'close' } })).text();
  const m = new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** A device sending one reading per frame (so a frame's seq is its reading's index), remembering its highest ack. */
function device(url: string, id: string): DeviceClient & { ackedUpTo: number; sent: number } {
  const c = new DeviceClient({ url, deviceId: id, token: deviceToken(id), batchMs: 0, maxReadingsPerFrame: 1, backoffInitialMs: 50, backoffMaxMs: 200 });
  const d = Object.assign(c, { ackedUpTo: -1, sent: 0 });
  c.on('error', () => {});
  c.on('acked', (a) => (d.ackedUpTo = Math.max(d.ackedUpTo, a.seq)));
  clients.push(c);
  return d;
}

function send(d: DeviceClient & { sent: number }, n: number): void {
  for (let i = 0; i < n; i++) d.send({ channel: 1, value: d.sent }, 1_700_000_000_000 + d.sent++);
}

function postCommand(g: ChildGateway, deviceId: string, key: string): Promise<{ status: number; body: any }> {
  return api(g.http, `/api/devices/${deviceId}/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'open-valve', args: { key }, ttlMs: 600_000, idempotencyKey: key }) });
}

describe.skipIf(!mountable)('data disk full (real tmpfs)', () => {
  it('stays up, holds acks, refuses commands with nothing queued, and recovers by itself when space returns', async () => {
    disk = mountSmallDisk();
    const port = await freePort();
    child = await gateway(disk.dir, port);
    const g = child;
    // The command target connects once, so the gateway knows it, and goes offline: its commands wait.
    const target = device(g.ws, 'valve-0001');
    await target.connect();
    await target.close();
    const d = device(g.ws, 'meter-0001');
    await d.connect();
    send(d, 10);
    await waitFor(() => d.ackedUpTo === 9, 'the first acks');
    expect((await postCommand(g, 'valve-0001', 'before')).status).toBe(201);

    disk.fill();
    // Commands until the journal's last page is full too (a few still fit, and are then persisted).
    const accepted = ['before'];
    let refused: { status: number; body: any } | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const r = await postCommand(g, 'valve-0001', `during-${i}`);
      if (r.status === 201) accepted.push(`during-${i}`);
      else refused = { ...r, body: { ...r.body, key: `during-${i}` } };
    }
    expect(refused?.status).toBe(507);
    expect(refused?.body.error.code).toBe('COMMAND_NOT_PERSISTED');
    expect(refused?.body.error.message).toMatch(/commands\.jsonl.*ENOSPC/);
    // The same request again: refused again, and nothing of either attempt is queued.
    expect((await postCommand(g, 'valve-0001', refused!.body.key)).status).toBe(507);
    const listed = await api(g.http, '/api/devices/valve-0001/commands?limit=1000');
    expect(listed.body.commands.map((c: any) => c.args.key).sort()).toEqual([...accepted].sort());

    // Telemetry goes on until the cursor file's last page is full as well.
    const sending = setInterval(() => send(d, 1), 10);
    try {
      const failing = await waitFor(async () => {
        const r = await readyz(g);
        return r.status === 503 && /^failing: .*cursors\.log.*ENOSPC/.test(r.body.checks.cursors ?? '') ? r : undefined;
      }, '/readyz to name the failing cursor file', 20_000);
      expect(failing.body.checks.commandJournal).toMatch(/^failing: .*commands\.jsonl.*ENOSPC/);
      expect((await fetch(g.http + '/healthz', { headers: { connection: 'close' } })).status).toBe(200);
      // The log line reaches us through the child's stdout pipe, maybe after /readyz answered.
      await waitFor(() => /cursors\.log.*no acks go out.*Free space/.test(g.output()), "the cursor file's log line saying what to do");

      // No ack while the cursor file refuses: once a round was refused (so any ack sent before the
      // failure has arrived), wait until the gateway has ingested frames past the last ack and then
      // refused at least three more rounds of acks.
      const first = await metric(g, 'gateway_file_writes_refused_total{file="cursors"}');
      await waitFor(async () => (await metric(g, 'gateway_file_writes_refused_total{file="cursors"}')) > first, 'a refused round of acks');
      const held = d.ackedUpTo;
      await waitFor(async () => (await api(g.http, '/api/devices/meter-0001')).body.counters.frames > held + 20, 'frames past the last ack to be ingested');
      const refusedRounds = await metric(g, 'gateway_file_writes_refused_total{file="cursors"}');
      await waitFor(async () => (await metric(g, 'gateway_file_writes_refused_total{file="cursors"}')) >= refusedRounds + 3, 'more refused rounds of acks');
      expect(d.ackedUpTo).toBe(held);
    } finally {
      clearInterval(sending);
    }

    disk.free();
    await waitFor(async () => (await readyz(g)).status === 200, '/readyz to recover by itself');
    const ready = await readyz(g);
    expect(ready.body.checks).toMatchObject({ cursors: 'ok', commandJournal: 'ok' });
    await waitFor(() => d.ackedUpTo === d.sent - 1, 'every frame acked after recovery');
    const retried = await postCommand(g, 'valve-0001', refused!.body.key);
    expect(retried.status).toBe(201);
    accepted.push(refused!.body.key);
    expect(g.proc.exitCode).toBeNull();
    expect(await g.stop('SIGTERM')).toBe(0);

    // After a restart, exactly the accepted commands are there: none refused, none lost.
    child = await gateway(disk.dir, port);
    const after = await api(child.http, '/api/devices/valve-0001/commands?limit=1000');
    expect(after.body.commands.map((c: any) => c.args.key).sort()).toEqual([...accepted].sort());
    expect(new Set(after.body.commands.map((c: any) => c.state))).toEqual(new Set(['queued']));
  });

  it('a cursor write torn by a full disk does not stall the device after a restart (no false gap)', async () => {
    disk = mountSmallDisk();
    const port = await freePort();
    child = await gateway(disk.dir, port);
    const d = device(child.ws, 'meter-0002');
    await d.connect();
    send(d, 10);
    await waitFor(() => d.ackedUpTo === 9, 'the first acks');
    disk.fill();
    // Frames until the cursor file meets the full disk: the gateway then says so (or, before the
    // fix, died on the write after the torn one).
    const g = child;
    const sending = setInterval(() => send(d, 1), 10);
    try {
      await waitFor(async () => g.proc.exitCode !== null || /ENOSPC/.test((await readyz(g)).body.checks.cursors ?? ''), 'the cursor file to fail', 20_000);
    } finally {
      clearInterval(sending);
    }
    await child.stop('SIGKILL');
    disk.free();
    child = await gateway(disk.dir, port);
    // The device reconnects by itself, resends what was never acked, and goes on.
    send(d, 20);
    await waitFor(() => d.ackedUpTo === d.sent - 1, 'every frame acked after the restart');
    const rec = (await api(child.http, '/api/devices/meter-0002')).body;
    expect(rec.counters.gaps).toBe(0);
  });

  it('starts on a full disk degraded (file and errno named), not in a crash loop, and recovers by itself', async () => {
    disk = mountSmallDisk();
    const port = await freePort();
    child = await gateway(disk.dir, port);
    const d = device(child.ws, 'meter-0003');
    await d.connect();
    send(d, 5);
    await waitFor(() => d.ackedUpTo === 4, 'the first acks');
    await d.close();
    expect(await child.stop('SIGTERM')).toBe(0);

    disk.fill();
    child = await gateway(disk.dir, port);
    const g = child;
    expect((await fetch(g.http + '/healthz', { headers: { connection: 'close' } })).status).toBe(200);
    const r = await readyz(g);
    expect(r.status).toBe(503);
    expect(r.body.checks.cursors).toMatch(/^failing: .*cursors\.log.*ENOSPC/);
    await waitFor(() => /cursors\.log.*Free space/.test(g.output()), "the cursor file's log line saying what to do");

    // A device may connect and send; its frames wait for their ack until the disk takes the cursors.
    const again = device(g.ws, 'meter-0003');
    await again.connect();
    send(again, 5);
    disk.free();
    await waitFor(async () => (await readyz(g)).status === 200, '/readyz to recover by itself');
    await waitFor(() => again.ackedUpTo === again.sent - 1, 'the frames sent while degraded to be acked');
    expect(g.proc.exitCode).toBeNull();
  });
});
