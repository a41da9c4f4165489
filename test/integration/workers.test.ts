/**
 * `--workers 2`: two gateway processes on one port (SO_REUSEPORT), one cluster over the internal
 * backbone. Devices land on either worker; any connection (API, /live) sees every device and can
 * command any of them; /metrics sums the workers; a worker that dies is replaced and its devices
 * carry on elsewhere with nothing lost; SIGTERM stops everything with exit 0.
 */
import { Agent, get } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { sdkDevice } from '../helpers/devices.js';
import { api, deviceToken, gatewayArgs, OPERATOR_TOKEN, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { LiveClient } from '../helpers/live-client.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

let gw: ChildGateway | undefined;
const devices: DeviceClient[] = [];
const lives: LiveClient[] = [];

afterEach(async () => {
  for (const l of lives.splice(0)) l.ws.close();
  for (const d of devices.splice(0)) await d.close().catch(() => {});
  await gw?.stop();
  gw = undefined;
});

async function start(extra: string[] = []): Promise<ChildGateway> {
  gw = await spawnGateway(gatewayArgs(tempDir('workers-'), '--workers', '2', ...extra));
  return gw;
}

const device = (url: string, id: string): DeviceClient => sdkDevice(url, id, devices);

/** Worker pids, learned from /healthz over new connections (the kernel picks a worker for each). */
async function workerPids(base: string): Promise<Map<number, string>> {
  const pids = new Map<number, string>();
  await waitFor(async () => {
    const h = (await api(base, '/healthz')).body as { pid: number; instance: string };
    pids.set(h.pid, h.instance);
    return pids.size === 2;
  }, 'both workers to answer /healthz', 10_000);
  return pids;
}

/** GET over one kept-alive connection. */
function getOn(agent: Agent, url: string): Promise<any> {
  return new Promise((resolve, reject) => {
    get(url, { agent, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
}

/** GET `path` from the worker with this pid: new connections until one reaches it (the kernel picks). */
async function fromWorker(base: string, pid: number, path: string): Promise<any> {
  for (let i = 0; i < 200; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      if ((await getOn(agent, `${base}/healthz`)).pid === pid) return await getOn(agent, base + path);
    } finally {
      agent.destroy();
    }
  }
  throw new Error(`200 connections and none reached worker ${pid}`);
}

describe('gateway --workers 2', () => {
  it('spreads devices over both workers; any connection sees and commands every device; /metrics sums the workers', async () => {
    const mqttPort = await freePort();
    const g = await start(['--mqtt-port', String(mqttPort)]);
    const pids = await workerPids(g.http);
    expect([...pids.values()].sort()).toEqual(['worker-0', 'worker-1']);

    // Devices of no declared type: they take any command (here `ping`, which no demo type lists).
    // The kernel spreads connections over the workers by a hash of their addresses: with 8 devices
    // all of them landed on one worker about once in 200 runs (CI saw it); with 24, once in 10^7.
    const ids = Array.from({ length: 24 }, (_, i) => `probe-${String(i + 1).padStart(4, '0')}`);
    const clients = ids.map((id) => {
      const c = device(g.ws, id);
      c.onCommand('ping', (args) => ({ pong: args }));
      return c;
    });
    // An MQTT device too, through the embedded broker the workers share.
    const mq = device(`mqtt://127.0.0.1:${mqttPort}`, 'probe-mqtt');
    mq.onCommand('ping', (args) => ({ pong: args }));
    await Promise.all([...clients, mq].map((c) => c.connect()));
    const all = [...ids, 'probe-mqtt'];

    // Every worker lists every device online, and between them they hold all of them.
    const holders = new Set<string>();
    await waitFor(async () => {
      const list = (await api(g.http, '/api/devices')).body.devices as { id: string; online: boolean; instance: string }[];
      const online = list.filter((d) => all.includes(d.id) && d.online);
      for (const d of online) holders.add(d.instance);
      return online.length === all.length;
    }, 'every device online as seen from one worker');
    for (let i = 0; i < 10 && holders.size < 2; i++) {
      for (const d of (await api(g.http, '/api/devices')).body.devices as { instance: string }[]) holders.add(d.instance);
    }
    expect(holders).toEqual(new Set(['worker-0', 'worker-1']));

    // A dashboard on one worker sees readings from devices on both.
    const live = await LiveClient.connect(g.ws, OPERATOR_TOKEN);
    lives.push(live);
    live.send({ op: 'subscribe', streams: all.map((id) => `device:${id}`) });
    await live.waitFor((m) => m.type === 'hello', 'hello');
    await new Promise((r) => setTimeout(r, 200));
    const t = Date.now();
    for (const c of [...clients, mq]) c.send([{ channel: 1, value: 42 }], t);
    await waitFor(() => all.every((id) => live.messages.some((m) => m.type === 'device' && m.id === id)), 'live messages from every device', 10_000);

    // Commands through whichever worker each request reaches, to devices on either: all acked.
    const made = await Promise.all(
      all.map(async (id, i) => {
        const r = await api(g.http, `/api/devices/${id}/commands`, { method: 'POST', body: JSON.stringify({ name: 'ping', args: i }) });
        expect(r.status).toBe(201);
        return r.body.id as string;
      }),
    );
    await waitFor(async () => {
      const states = await Promise.all(made.map(async (id) => (await api(g.http, `/api/commands/${id}`)).body?.state));
      return states.every((s) => s === 'acked');
    }, 'every command acked, read through either worker', 15_000);

    // /metrics is the sum over the workers: every reading counted once.
    await waitFor(async () => {
      const text = await (await fetch(`${g.http}/metrics`, { headers: { connection: 'close' } })).text();
      return Number(/^gateway_readings_total (\d+)/m.exec(text)?.[1]) === all.length && Number(/^gateway_devices_online (\d+)$/m.exec(text)?.[1]) === all.length;
    }, `/metrics to count each reading once and ${all.length} devices online`);
  });

  it('replaces a worker that dies; its devices reconnect to the other and lose nothing', async () => {
    const g = await start();
    const pids = await workerPids(g.http);
    const ids = Array.from({ length: 6 }, (_, i) => `vibration-${String(i + 1).padStart(4, '0')}`);
    const clients = ids.map((id) => device(g.ws, id));
    await Promise.all(clients.map((c) => c.connect()));
    const victim = [...pids.keys()][0]!;
    let sent = 0;
    const send = () => {
      for (const c of clients) c.send([{ channel: 1, value: sent }], 1_700_000_000_000 + sent);
      sent++;
    };
    for (let i = 0; i < 50; i++) send();
    // Acked, so the devices will not resend these: with the in-memory store, the readings the dead
    // worker took die with it (as they would with one process: InfluxDB keeps them through a crash).
    await waitFor(() => clients.every((c) => c.stats.unacked === 0 && c.stats.pendingReadings === 0), 'the first readings acked');
    const survivor = [...pids.keys()].find((p) => p !== victim)!;
    const heldBy = new Map<string, string>();
    await waitFor(async () => {
      const list = (await fromWorker(g.http, survivor, '/api/devices')).devices as { id: string; instance: string | null; online: boolean }[];
      for (const d of list) if (d.online && d.instance) heldBy.set(d.id, d.instance);
      return ids.every((id) => heldBy.has(id));
    }, 'the survivor to know where every device is');
    const sentBefore = sent;
    process.kill(victim, 'SIGKILL');
    for (let i = 0; i < 50; i++) {
      send();
      await new Promise((r) => setTimeout(r, 10));
    }
    // A new worker takes the dead one's place.
    await waitFor(async () => {
      const h = (await api(g.http, '/healthz')).body as { pid: number };
      return !pids.has(h.pid);
    }, 'a replacement worker', 15_000);
    await waitFor(() => clients.every((c) => c.stats.unacked === 0), 'every frame acked', 15_000);
    // History, asked of the survivor (which asks the replacement for its part): the devices the
    // survivor held all along have every reading, once. The dead worker's readings died with it
    // (in-memory storage): for its devices the answer says so, and is not a silently thinner chart.
    const victimName = pids.get(victim)!;
    for (const id of ids) {
      const h = await fromWorker(g.http, survivor, `/api/devices/${id}/history?channel=1&from=1699999999000&to=1700000001000&points=1000`);
      if (heldBy.get(id) === victimName) {
        expect(h.error?.code).toBe('HISTORY_OWNER_UNAVAILABLE');
      } else {
        expect(((h?.points ?? []) as { count: number }[]).reduce((a, p) => a + p.count, 0)).toBe(sent);
      }
    }
    expect(sentBefore).toBe(50);
    expect(g.output()).toContain(`${pids.get(victim)!.replace('-', ' ')} died`);
  });

  it('stops every worker on SIGTERM and exits 0', async () => {
    const g = await start();
    const pids = await workerPids(g.http);
    expect(await g.stop('SIGTERM')).toBe(0);
    gw = undefined;
    for (const pid of pids.keys()) expect(() => process.kill(pid, 0)).toThrow();
  });
});
