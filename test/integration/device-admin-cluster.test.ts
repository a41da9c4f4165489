/**
 * Device management in a cluster (issue 17): a change made through one instance's API holds on
 * every instance, as each publishes its changes retained at QoS 1 on the backbone and applies the
 * others' (newest rev wins). A device added on B connects to A with its token; disabled on B, its
 * connection on A is closed (4410) and A refuses it; an instance started later learns it all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceTokenAnswer } from '../../devices/api/json.js';
import { Agent, get } from 'node:http';
import { api, gatewayArgs, OPERATOR_TOKEN, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;

/** A promise that must settle within `ms` (a test never waits unbounded). */
function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
let broker: Mosquitto | undefined;
const gateways: ChildGateway[] = [];
const sockets: RawDevice[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  for (const g of gateways.splice(0)) await g.stop();
  await broker?.stop();
  broker = undefined;
});

const SUMMARY_MS = 3000;

async function instance(name: string): Promise<ChildGateway> {
  // Summaries 3 s apart: the device A closed (on its disable) is still in A's next summary when it is
  // deleted, as when a deletion comes within one interval of a disconnect.
  const g = await spawnGateway(gatewayArgs(tempDir(`devmgmt-${name}-`), '--cluster-url', broker!.url, '--instance-id', name, '--mqtt-share-group', 'devmgmt-test', '--cluster-summary-ms', String(SUMMARY_MS)));
  gateways.push(g);
  return g;
}

async function upgrade(base: string, id: string, token: string): Promise<number> {
  try {
    const d = await RawDevice.connect(base, id, token);
    d.close();
    await within(d.closed, 'the socket to close');
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

describe.skipIf(!hasMosquitto)('device management across instances (Mosquitto backbone)', () => {
  it('a device added, disabled and deleted through B is so on A, and on an instance that starts later', async () => {
    broker = await startMosquitto();
    const a = await instance('mgmt-a');
    const b = await instance('mgmt-b');
    const post = (body?: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });

    const added = await api<DeviceTokenAnswer>(b.http, '/api/devices', post({ id: 'mgmt-1', name: 'Added on B', labels: { site: 'north' } }));
    expect(added.status).toBe(201);
    // Listed on A before it ever connects.
    await waitFor(async () => (await api(a.http, '/api/devices?label=site=north')).body.devices.some((d: { id: string; name: string }) => d.id === 'mgmt-1' && d.name === 'Added on B'), 'A to list the device added on B');
    await waitFor(async () => (await upgrade(a.ws, 'mgmt-1', added.body.token)) === 101, 'A to let the device added on B in');
    expect((await api(a.http, '/api/devices?label=site=north')).body.devices.map((d: { id: string }) => d.id)).toEqual(['mgmt-1']);

    // Connected to A, disabled through B: A closes it and refuses it.
    const dev = await RawDevice.connect(a.ws, 'mgmt-1', added.body.token);
    sockets.push(dev);
    expect((await api(b.http, '/api/devices/mgmt-1/disable', post())).status).toBe(200);
    expect((await within(dev.closed, 'A to close the device disabled on B')).code).toBe(4410);
    expect(await upgrade(a.ws, 'mgmt-1', added.body.token)).toBe(403);

    // An instance that starts now reads the retained changes.
    const c = await instance('mgmt-c');
    await waitFor(async () => (await api(c.http, '/api/devices/mgmt-1')).body?.disabled === true, 'C to know the device is disabled');
    expect(await upgrade(c.ws, 'mgmt-1', added.body.token)).toBe(403);

    // Deleted through A: gone on B and C, its token refused everywhere.
    expect((await api(a.http, '/api/devices/mgmt-1', { method: 'DELETE' })).status).toBe(200);
    for (const g of [b, c]) {
      await waitFor(async () => (await api(g.http, '/api/devices/mgmt-1')).status === 404, `${g.http} to forget the deleted device`);
      expect(await upgrade(g.ws, 'mgmt-1', added.body.token)).toBe(401);
    }
    // And it stays gone after A's next summary: A does not tell the others of a deleted device (it
    // did, and they made it again: CI saw a deleted device stay listed on another instance).
    await new Promise((r) => setTimeout(r, SUMMARY_MS + 500));
    for (const g of [b, c]) expect((await api(g.http, '/api/devices/mgmt-1')).status).toBe(404);
  });
});

/** GET over one kept-alive connection (so the health answer and the request reach the same worker). */
function getOn(agent: Agent, url: string): Promise<any> {
  return new Promise((resolve, reject) => {
    get(url, { agent, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
}

describe('device management with --workers 2 (the internal backbone)', () => {
  it('a device added through one worker is known, with its labels, to the other', async () => {
    const g = await spawnGateway(gatewayArgs(tempDir('devmgmt-workers-'), '--workers', '2'));
    gateways.push(g);
    const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'wk-1', labels: { site: 'west' } }) };
    const added = await api(g.http, '/api/devices', post);
    expect(added.status).toBe(201);
    // Ask both workers (new connections until each pid answered): each lists the device.
    const seen = new Map<number, string[]>();
    await waitFor(async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const pid = (await getOn(agent, `${g.http}/healthz`)).pid as number;
        const ids = ((await getOn(agent, `${g.http}/api/devices?label=site=west`)).devices as { id: string }[]).map((d) => d.id);
        seen.set(pid, ids);
      } finally {
        agent.destroy();
      }
      return seen.size === 2 && [...seen.values()].every((ids) => ids.includes('wk-1'));
    }, 'both workers to list the added device', 20_000, 20);
    // And each lets it in with its token (the kernel spreads the connections over the workers).
    for (let i = 0; i < 6; i++) expect(await upgrade(g.ws, 'wk-1', added.body.token)).toBe(101);
  });
});
