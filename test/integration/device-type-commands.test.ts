/**
 * The dashboard's command chips come from the device types (devices/types/demo.json). Each chip
 * must work as it is: every command a type lists, with its example arguments, is acked by the
 * simulator's devices of that type, and every command another type lists but this one does not is
 * refused by the gateway (UNKNOWN_COMMAND) before it reaches them (so no chip is offered where it
 * would fail).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_DEVICE_TYPES as DEVICE_TYPES } from '../../devices/device-types.js';
import { Simulation, simulatorOptions } from '../../simulator/index.js';
import { FLEET_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway | undefined;
let sim: Simulation | undefined;
afterEach(async () => {
  await sim?.stop();
  await gw?.close();
  sim = gw = undefined;
});

function post(g: TestGateway, id: string, name: string, args: unknown) {
  return g.api(`/api/devices/${id}/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, args, ttlMs: 15_000 }),
  });
}

async function command(g: TestGateway, id: string, name: string, args: unknown): Promise<{ state: string; error?: unknown }> {
  const { status, body } = await post(g, id, name, args);
  expect(status).toBe(201);
  return waitFor(
    async () => {
      const c = (await g.api(`/api/commands/${body.id}`)).body;
      return ['acked', 'failed', 'expired', 'timed_out'].includes(c.state) ? c : undefined;
    },
    `command ${name} to ${id} to finish`,
    20_000,
  );
}

describe('device-type commands against the simulator', () => {
  it('every listed command is acked with its example arguments; commands of other types are refused', async () => {
    gw = await startGateway();
    const types = DEVICE_TYPES.map((t) => t.type) as ('climate' | 'power' | 'vibration')[];
    sim = Simulation.start(simulatorOptions({ url: gw.ws, fleetKey: FLEET_KEY, devices: types.length, types, rate: 2, durationS: 0, workers: 0 }));
    await sim.ready;
    const allNames = new Set(DEVICE_TYPES.flatMap((t) => (t.commands ?? []).map((c) => c.name)));
    for (const t of DEVICE_TYPES) {
      const id = `${t.type}-0001`;
      await waitFor(async () => (await gw!.api(`/api/devices/${id}`)).body?.online === true, `${id} online`);
      // Reboot last: the device comes back with a new client, which is not what is tested here.
      const listed = [...(t.commands ?? [])].sort((a, b) => Number(a.name === 'reboot') - Number(b.name === 'reboot'));
      for (const c of listed) {
        const r = await command(gw, id, c.name, c.example);
        expect(r.state, `${c.name} ${JSON.stringify(c.example)} to ${id}: ${JSON.stringify(r)}`).toBe('acked');
      }
      for (const name of allNames) {
        if (t.commands?.some((c) => c.name === name)) continue;
        const example = DEVICE_TYPES.flatMap((x) => x.commands ?? []).find((c) => c.name === name)!;
        const r = await post(gw, id, name, example.example);
        expect(r, `${name} to ${id} should be refused`).toMatchObject({ status: 400, body: { error: { code: 'UNKNOWN_COMMAND' } } });
      }
    }
  });
});
