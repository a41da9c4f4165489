/**
 * `simulate --incident` against a real gateway with its default rules for the demo types (DESIGN.md:
 * "`simulate --incident` makes the simulated fleet raise one"): within half a minute the first
 * climate sensor's temperature is over 35 °C long enough to raise an alarm on channel 1, the first
 * vibration monitor's alarm channel raises one on channel 3, and the first power meter has gone
 * quiet while the others keep reporting; every frame sent is still acked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alarm, AlarmList, DeviceSummary } from '../../devices/api/json.js';
import { simulatorOptions } from '../../simulator/options.js';
import { Simulation } from '../../simulator/run.js';
import { FLEET_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

describe('simulate --incident', () => {
  let gw: TestGateway;
  let sim: Simulation;

  beforeAll(async () => {
    gw = await startGateway();
    sim = Simulation.start(simulatorOptions({ url: gw.ws, fleetKey: FLEET_KEY, devices: 6, rate: 2, incident: true, faults: false, drainS: 5 }));
    await sim.ready;
  });

  afterAll(async () => {
    await sim?.stop();
    await gw?.close();
  });

  const alarms = async (device: string): Promise<Alarm[]> => {
    const res = await gw.api<AlarmList>(`/api/alarms?device=${device}`);
    expect(res.status).toBe(200);
    return res.body.alarms;
  };

  it('raises the default rules on the devices it names, and silences one, with every frame acked', async () => {
    // Bounds, not speed checks: the schedule raises both by second ~25.
    const hot = await waitFor(async () => (await alarms('climate-0001')).find((a) => a.channel === 1 && a.state === 'active'), 'an overheating alarm of climate-0001', 50_000, 250);
    expect(hot.value).toBeGreaterThan(35);
    const knock = await waitFor(async () => (await alarms('vibration-0001')).find((a) => a.channel === 3), 'a vibration alarm of vibration-0001', 20_000, 250);
    expect(knock.value).toBe(true);

    // The power meter went quiet from second 15 on while a sibling keeps reporting.
    const seen = async (id: string) => (await gw.api<DeviceSummary>(`/api/devices/${id}`)).body.lastSeen ?? 0;
    await waitFor(() => Date.now() - sim.t0 > 20_000, 'second 20 of the schedule', 30_000, 200);
    const quietSince = await seen('power-0001');
    const sibling = await seen('power-0002');
    await waitFor(async () => (await seen('power-0002')) > sibling + 1000, 'power-0002 to keep reporting', 10_000, 200);
    expect(await seen('power-0001')).toBe(quietSince);

    const summary = await sim.stop();
    expect(summary).toMatchObject({ ok: true, devices: 6 });
    expect(summary.acked).toBe(summary.sent);
  });
});
