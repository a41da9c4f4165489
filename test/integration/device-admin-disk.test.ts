/**
 * Device changes on a full data disk (issue 17): the gateway runs as its CLI on a real 1 MiB tmpfs
 * filled to the last byte. A change is refused with 507 REGISTRY_NOT_PERSISTED and changes
 * nothing (not even until a restart); once space returns the registry file is rewritten by itself
 * and changes are taken again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceSummary, DeviceTokenAnswer } from '../../devices/api/json.js';
import { FLEET_KEY, OPERATOR_TOKEN, spawnGateway, type ChildGateway } from '../helpers/gateway.js';
import { canMountSmallDisk, mountSmallDisk, type SmallDisk } from '../helpers/small-disk.js';
import { waitFor } from '../helpers/wait.js';

const mountable = canMountSmallDisk();
let disk: SmallDisk | undefined;
let child: ChildGateway | undefined;
afterEach(async () => {
  await child?.stop('SIGKILL');
  child = undefined;
  disk?.destroy();
  disk = undefined;
});

function gateway(dir: string): Promise<ChildGateway> {
  return spawnGateway(['--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--fleet-key', FLEET_KEY, '--operator-token', OPERATOR_TOKEN]);
}

const post = (body?: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });

describe.skipIf(!mountable)('device changes on a full data disk (real tmpfs)', () => {
  it('are refused with 507 REGISTRY_NOT_PERSISTED, change nothing, and are taken again once space returns', async () => {
    disk = mountSmallDisk(1024);
    child = await gateway(disk.dir);
    const g = child;
    expect((await g.api('/api/devices', post({ id: 'before-full' }))).status).toBe(201);
    disk.fill();

    // The file's last page may still have room (tmpfs allocates whole pages): add until the kernel says no.
    const taken: string[] = [];
    let add: { status: number; body: any } | undefined;
    for (let i = 0; i < 200; i++) {
      add = await g.api('/api/devices', post({ id: `while-full-${i}`, labels: { site: 'north' } }));
      if (add.status !== 201) break;
      taken.push(`while-full-${i}`);
    }
    expect(add!.status).toBe(507);
    expect(add!.body.error.code).toBe('REGISTRY_NOT_PERSISTED');
    expect(add!.body.error.message).toContain('ENOSPC');
    const refusedId = `while-full-${taken.length}`;
    expect((await g.api(`/api/devices/${refusedId}`)).status).toBe(404);
    const disable = await g.api('/api/devices/before-full/disable', post());
    expect([disable.status, disable.body.error.code]).toEqual([507, 'REGISTRY_NOT_PERSISTED']);
    expect((await g.api<DeviceSummary>('/api/devices/before-full')).body.disabled).toBe(false);
    const ready = await (await fetch(g.http + '/readyz', { headers: { connection: 'close' } })).json();
    expect(ready.checks.deviceRegistry).toMatch(/^failing: .*ENOSPC/);
    const metrics = await (await fetch(g.http + '/metrics', { headers: { connection: 'close' } })).text();
    expect(metrics).toMatch(/gateway_device_admin_total\{action="add",result="REGISTRY_NOT_PERSISTED"\} 1/);
    expect(metrics).toMatch(/gateway_file_failing\{file="deviceRegistry"\} 1/);

    disk.free();
    await waitFor(async () => (await (await fetch(g.http + '/readyz', { headers: { connection: 'close' } })).json()).checks.deviceRegistry === 'ok', 'the registry file to be rewritten', 15_000, 100);
    const again = await g.api<DeviceTokenAnswer>('/api/devices', post({ id: 'after-full' }));
    expect(again.status).toBe(201);

    // What the disk refused stayed refused; what it took survives a kill -9.
    await g.stop('SIGKILL');
    child = await gateway(disk.dir);
    const ids = (await child.api('/api/devices')).body.devices.map((d: DeviceSummary) => d.id).sort();
    expect(ids).toEqual(['after-full', 'before-full', ...taken].sort());
    expect(ids).not.toContain(refusedId);
  });
});
