/**
 * Alarms on a full data disk (a real 1 MiB tmpfs filled to the last byte): an operator's
 * acknowledge is refused with ALARM_NOT_PERSISTED and changes nothing; a rule's clear is applied,
 * shown and counted; once space returns the file is rewritten, so after a kill -9 the alarm is
 * still cleared.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { deviceToken, FLEET_KEY, OPERATOR_TOKEN, spawnGateway, type ChildGateway } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { canMountSmallDisk, mountSmallDisk, type SmallDisk } from '../helpers/small-disk.js';
import { waitFor } from '../helpers/wait.js';

const mountable = canMountSmallDisk();
let disk: SmallDisk | undefined;
const children: ChildGateway[] = [];
const raws: RawDevice[] = [];
afterEach(async () => {
  for (const d of raws.splice(0)) d.terminate();
  for (const c of children.splice(0)) await c.stop('SIGKILL');
  disk?.destroy();
  disk = undefined;
});

async function gateway(dir: string): Promise<ChildGateway> {
  const g = await spawnGateway(['--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN]);
  children.push(g);
  return g;
}

async function metric(g: ChildGateway, name: string): Promise<number> {
  const text = await (await fetch(g.http + '/metrics', { headers: { connection: 'close' } })).text();
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

async function checks(g: ChildGateway): Promise<Record<string, string>> {
  return ((await (await fetch(g.http + '/readyz', { headers: { connection: 'close' } })).json()) as { checks: Record<string, string> }).checks;
}

describe.skipIf(!mountable)('alarms on a full data disk (real tmpfs)', () => {
  it('refuses an acknowledge, applies and counts a rule clear, and writes it once space returns', async () => {
    disk = mountSmallDisk();
    const g = await gateway(disk.dir);
    const rule = { id: 'hot', name: 'hot', severity: 'major', deviceType: 'climate', condition: { kind: 'above', channel: 1, threshold: 30 } };
    expect((await g.api('/api/alarm-rules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) })).status).toBe(201);
    // Enough alarms that their acknowledgements need more than the file's last page holds.
    const ids = Array.from({ length: 12 }, (_, i) => `climate-disk-${i}`);
    const t = Date.now();
    const devs = new Map<string, RawDevice>();
    for (const id of ids) {
      const dev = await RawDevice.connect(g.ws, id, deviceToken(id));
      raws.push(dev);
      devs.set(id, dev);
      dev.send(encodeTelemetry({ epoch: 1, seq: 1, timestamp: t }, [{ channel: 1, value: 40, type: 'f32' }]));
    }
    const alarms = await waitFor(async () => {
      const list = (await g.api('/api/alarms?state=active')).body.alarms as { id: string; deviceId: string }[];
      return list.length === ids.length ? list : undefined;
    }, 'the alarms');

    disk.fill();
    let refusedOn: { id: string; deviceId: string } | undefined;
    for (const a of alarms) {
      const r = await g.api(`/api/alarms/${a.id}/acknowledge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"note":"on a full disk"}' });
      if (r.status === 200) continue;
      expect(r).toMatchObject({ status: 507, body: { error: { code: 'ALARM_NOT_PERSISTED' } } });
      refusedOn = a;
      break;
    }
    expect(refusedOn, 'an acknowledge refused once the disk is full').toBeDefined();
    expect((await g.api(`/api/alarms/${refusedOn!.id}`)).body.state).toBe('active');
    expect((await checks(g)).alarms).toMatch(/^failing: .*ENOSPC/);

    devs.get(refusedOn!.deviceId)!.send(encodeTelemetry({ epoch: 1, seq: 2, timestamp: t + 1000 }, [{ channel: 1, value: 10, type: 'f32' }]));
    await waitFor(async () => (await g.api(`/api/alarms/${refusedOn!.id}`)).body.state === 'cleared', 'the rule to clear it in memory');
    expect(await metric(g, 'gateway_alarm_transitions_unpersisted_total')).toBe(1);
    const alarm = refusedOn!;

    disk.free();
    await waitFor(async () => (await checks(g)).alarms === 'ok', 'the alarm file to be rewritten', 15_000);
    await g.stop('SIGKILL');
    const again = await gateway(disk.dir);
    expect((await again.api(`/api/alarms/${alarm.id}`)).body).toMatchObject({ state: 'cleared', transitions: [{ state: 'active' }, { state: 'cleared', by: 'rule' }] });
    expect((await again.api('/api/alarms?state=acknowledged')).body.alarms.length).toBeGreaterThan(0);
  });
});
