/**
 * The simulator against a real in-process gateway: every frame acked and the gateway's counters
 * agreeing, over WebSocket and MQTT, from the API and from the built CLI; commands answered; and
 * each chaos option visibly changing what the gateway sees.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceList, DeviceSummary } from '../../devices/api/json.js';
import { chaosId, runSimulation, Simulation, simulatorOptions, type SimulatorOptions, type Summary } from '../../simulator/index.js';
import { FLEET_KEY, ROOT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const gws: TestGateway[] = [];
const sims: Simulation[] = [];
afterEach(async () => {
  for (const s of sims.splice(0)) await s.stop();
  for (const g of gws.splice(0)) await g.close();
});

async function gateway(mqtt = false): Promise<TestGateway> {
  const g = await startGateway(mqtt ? { mqttPort: await freePort() } : {});
  gws.push(g);
  return g;
}

const mqttUrl = (g: TestGateway): string => `mqtt://127.0.0.1:${g.gateway.mqttPort}`;

function options(url: string, o: Partial<SimulatorOptions> = {}): SimulatorOptions {
  return simulatorOptions({ url, fleetKey: FLEET_KEY, devices: 20, rate: 5, durationS: 2, workers: 0, drainS: 10, ...o });
}

/** The simulated devices as the gateway lists them (the chaos-* siblings of --malformed left out). */
async function fleet(g: TestGateway): Promise<DeviceSummary[]> {
  const { body } = await g.api<DeviceList>('/api/devices');
  return body.devices.filter((d) => !d.id.startsWith('chaos-'));
}

async function totals(g: TestGateway): Promise<DeviceSummary['counters'] & { devices: number }> {
  const t = { devices: 0, connections: 0, frames: 0, readings: 0, duplicates: 0, gaps: 0, errors: 0 };
  for (const d of await fleet(g)) {
    t.devices++;
    for (const k of ['connections', 'frames', 'readings', 'duplicates', 'gaps', 'errors'] as const) t[k] += d.counters[k];
  }
  return t;
}

/** What every run must show: nothing lost, and the gateway stored exactly the frames the devices sent. */
async function expectAllDelivered(g: TestGateway, s: Summary, devices: number): Promise<Awaited<ReturnType<typeof totals>>> {
  expect(s).toMatchObject({ ok: true, devices, unacked: 0, dropped: 0, refused: 0 });
  expect(s.acked).toBe(s.sent);
  const t = await totals(g);
  expect(t.devices).toBe(devices);
  expect(t.frames).toBe(s.sent);
  expect(t.readings).toBe(s.readings);
  expect(t.gaps).toBe(0);
  return t;
}

/** The error code of a command the gateway refuses with 400. */
async function refused(g: TestGateway, id: string, name: string, args?: unknown): Promise<string> {
  const { status, body } = await g.api(`/api/devices/${id}/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, args }) });
  expect(status).toBe(400);
  return body.error.code;
}

async function command(g: TestGateway, id: string, name: string, args?: unknown): Promise<any> {
  const { status, body } = await g.api(`/api/devices/${id}/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, args, ttlMs: 10_000 }),
  });
  expect(status).toBe(201);
  return waitFor(
    async () => {
      const c = (await g.api(`/api/commands/${body.id}`)).body;
      return ['acked', 'failed', 'expired', 'timed_out'].includes(c.state) ? c : undefined;
    },
    `command ${name} to finish`,
    10_000,
  );
}

describe('simulate: delivery', () => {
  it('50 devices at 5 Hz for 3 s over WebSocket: every frame acked, gateway counters agree', async () => {
    const g = await gateway();
    const s = await runSimulation(options(g.ws, { devices: 50, durationS: 3 }));
    expect(s.sent).toBeGreaterThan(50 * 5 * 2);
    expect(s.ackLatencyMs.p50).not.toBeNull();
    const t = await expectAllDelivered(g, s, 50);
    expect(t).toMatchObject({ connections: 50, duplicates: 0, errors: 0 });
    // Ids name the type, and the gateway derives it from them.
    const list = await fleet(g);
    for (const d of list) expect(d.type).toBe(d.id.split('-')[0]);
    expect(new Set(list.map((d) => d.type))).toEqual(new Set(['climate', 'power', 'vibration']));
    expect(list.map((d) => d.id)).toEqual(expect.arrayContaining(['climate-0017', 'power-0017', 'vibration-0016']));
  });

  it('50 devices at 5 Hz for 3 s over MQTT: every frame acked, gateway counters agree', async () => {
    const g = await gateway(true);
    const s = await runSimulation(options(mqttUrl(g), { devices: 50, durationS: 3 }));
    expect(s.transport).toBe('mqtt');
    expect(s.sent).toBeGreaterThan(50 * 5 * 2);
    const t = await expectAllDelivered(g, s, 50);
    expect(t).toMatchObject({ connections: 50, duplicates: 0, errors: 0 });
  });

  it('the built CLI with 2 worker threads prints one JSON summary and exits 0', async () => {
    const g = await gateway();
    const args = ['--json', '--url', g.ws, '--devices', '20', '--rate', '5', '--duration', '2', '--workers', '2', '--id-prefix', 'cli-'];
    const proc = spawn(process.execPath, [join(ROOT, 'dist/simulator/cli.js'), ...args], {
      env: { ...process.env, SIMULATE_FLEET_KEY: FLEET_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    clearTimeout(timer);
    expect(code, err).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Summary;
    expect(s).toMatchObject({ ok: true, devices: 20, workers: 2 });
    expect(s.sent).toBeGreaterThan(0);
    const t = await expectAllDelivered(g, s, 20);
    expect((await fleet(g)).every((d) => d.id.includes('-cli-'))).toBe(true);
    expect(t.connections).toBe(20);
  });
});

describe.each(['ws', 'mqtt'] as const)('simulate: commands over %s', (transport) => {
  it('set-interval, reboot, set-threshold are answered; an unknown command is rejected', async () => {
    const g = await gateway(transport === 'mqtt');
    const sim = Simulation.start(options(transport === 'mqtt' ? mqttUrl(g) : g.ws, { devices: 3, rate: 2, durationS: 0 }));
    sims.push(sim);
    await waitFor(async () => (await fleet(g)).filter((d) => d.online && d.counters.frames > 0).length === 3, 'three devices sending');

    const fast = await command(g, 'climate-0001', 'set-interval', { hz: 20 });
    expect(fast).toMatchObject({ state: 'acked', result: { intervalMs: 50 } });
    const before = (await g.api('/api/devices/climate-0001')).body.counters.frames;
    await new Promise((r) => setTimeout(r, 1000));
    expect((await g.api('/api/devices/climate-0001')).body.counters.frames - before).toBeGreaterThan(10);

    const epoch = (await g.api('/api/devices/power-0001')).body.epoch;
    const reboot = await command(g, 'power-0001', 'reboot');
    expect(reboot).toMatchObject({ state: 'acked', result: { rebooting: true, epoch } });
    const back = await waitFor(async () => {
      const d = (await g.api('/api/devices/power-0001')).body as DeviceSummary;
      return d.online && d.counters.connections === 2 && d.epoch !== epoch && d.counters.frames > 0 ? d : undefined;
    }, 'power-0001 back with a new epoch');
    expect(back.epoch).not.toBe(epoch);

    const threshold = await command(g, 'vibration-0001', 'set-threshold', { value: 0 });
    expect(threshold).toMatchObject({ state: 'acked', result: { threshold: 0 } });
    await waitFor(async () => (await g.api('/api/devices/vibration-0001')).body.last['3']?.value === true, 'the alarm on at threshold 0');
    // What the device's type does not declare, or args that do not fit its schema, the gateway
    // refuses before the device sees it (README "Device types").
    expect(await refused(g, 'climate-0001', 'set-threshold', { value: 3 })).toBe('UNKNOWN_COMMAND');
    expect(await refused(g, 'climate-0001', 'set-interval', { ms: -5 })).toBe('BAD_COMMAND_ARGS');
    expect(await refused(g, 'vibration-0001', 'self-destruct')).toBe('UNKNOWN_COMMAND');

    const s = await sim.stop();
    expect(s).toMatchObject({ commands: 3, reboots: 1 });
    await expectAllDelivered(g, s, 3);
  });
});

describe('simulate: chaos changes what the gateway sees', () => {
  it('--duplicate: the gateway drops the copies, stores each frame once', async () => {
    const g = await gateway();
    const s = await runSimulation(options(g.ws, { duplicate: 0.3 }));
    expect(s.chaos.duplicated).toBeGreaterThan(0);
    const t = await expectAllDelivered(g, s, 20);
    expect(t.duplicates).toBe(s.chaos.duplicated);
  });

  it('--reorder: frames arrive out of order, each is ingested once, no gaps', async () => {
    const g = await gateway();
    const s = await runSimulation(options(g.ws, { reorder: 0.3 }));
    expect(s.chaos.reordered).toBeGreaterThan(0);
    const t = await expectAllDelivered(g, s, 20);
    expect(t.duplicates).toBe(0);
  });

  it('--churn: devices drop and reconnect, resend, and nothing is lost', async () => {
    const g = await gateway();
    const s = await runSimulation(options(g.ws, { churn: 0.5, durationS: 3 }));
    expect(s.chaos.churned).toBeGreaterThan(0);
    expect(s.reconnects).toBeGreaterThan(0);
    const t = await expectAllDelivered(g, s, 20);
    // Every reconnect is a connection; a drop that hits an attempt still opening may add one the device never saw open.
    expect(t.connections).toBeGreaterThanOrEqual(20 + s.reconnects);
  });

  it('--malformed: the gateway counts FRAME_* errors on chaos-* siblings; real devices are untouched', async () => {
    const g = await gateway();
    const s = await runSimulation(options(g.ws, { malformed: 0.05 }));
    expect(s.chaos.malformed).toBeGreaterThan(0);
    const byCode = await waitFor(() => {
      const codes = Object.entries(Object.fromEntries(g.gateway.ingest.stats.errorsByCode)).filter(([k]) => k.startsWith('FRAME_'));
      return codes.length > 0 ? Object.fromEntries(codes) : undefined;
    }, 'FRAME_* errors at the gateway');
    const frameErrors = Object.values(byCode).reduce((a, b) => a + b, 0);
    expect(frameErrors).toBeGreaterThan(0);
    expect(frameErrors).toBeLessThanOrEqual(s.chaos.malformed);
    const { body } = await g.api<DeviceList>('/api/devices');
    const siblings = body.devices.filter((d) => d.id.startsWith('chaos-'));
    expect(siblings.length).toBeGreaterThan(0);
    const one = (await g.api(`/api/devices/${siblings[0]!.id}`)).body;
    expect(one.counters.errors).toBeGreaterThan(0);
    expect(one.lastError).toMatch(/^FRAME_/);
    expect(siblings[0]!.id).toBe(chaosId(siblings[0]!.id.slice('chaos-'.length)));
    const t = await expectAllDelivered(g, s, 20);
    expect(t).toMatchObject({ errors: 0, connections: 20 });
  });

  it('--skew: device times differ from the gateway clock by up to the skew', async () => {
    const g = await gateway();
    const skew = 60_000;
    const s = await runSimulation(options(g.ws, { skewMs: skew }));
    await expectAllDelivered(g, s, 20);
    const offsets = (await fleet(g)).map((d) => Math.max(...Object.values(d.last).map((v) => v.time)) - d.lastSeen!);
    for (const off of offsets) expect(Math.abs(off)).toBeLessThan(skew + 2000);
    expect(Math.max(...offsets.map(Math.abs))).toBeGreaterThan(skew / 3);
    expect(offsets.some((o) => o > 0) && offsets.some((o) => o < 0)).toBe(true);
  });

  it('--outage: every device drops at once, stays away, comes back and delivers what it queued', async () => {
    const g = await gateway();
    const s = await runSimulation(options(g.ws, { outage: { startS: 1.5, durationS: 1 }, durationS: 4 }));
    expect(s.chaos.outageDrops).toBe(20);
    const t = await expectAllDelivered(g, s, 20);
    expect(t.connections).toBe(40);
  });

  it('over MQTT too: duplicates, reordering and churn, with nothing lost', async () => {
    const g = await gateway(true);
    const s = await runSimulation(options(mqttUrl(g), { duplicate: 0.2, reorder: 0.2, churn: 0.3, durationS: 2.5 }));
    expect(s.chaos.duplicated).toBeGreaterThan(0);
    expect(s.chaos.reordered).toBeGreaterThan(0);
    const t = await expectAllDelivered(g, s, 20);
    expect(t.duplicates).toBeGreaterThanOrEqual(s.chaos.duplicated);
    expect(t.connections).toBeGreaterThanOrEqual(20 + s.reconnects);
  });
});
