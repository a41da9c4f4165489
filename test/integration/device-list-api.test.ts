/**
 * GET /api/devices refuses what it would otherwise ignore (400 BAD_QUERY naming the parameter),
 * pages with limit + cursor, and GET /api/devices/{id} refuses a malformed id with 400, not 404.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceList } from '../../devices/api/json.js';
import { DeviceClient } from '../../devices/sdk/index.js';
import { deviceToken, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';

const IDS = ['d-01', 'd-02', 'd-03', 'd-04', 'd-05'];
let gw: TestGateway;
let online: DeviceClient;

beforeAll(async () => {
  const registry = join(tempDir('device-list-'), 'registry.json');
  writeFileSync(registry, JSON.stringify({ devices: IDS.map((id) => ({ id })) }));
  gw = await startGateway({ registry });
  online = new DeviceClient({ url: gw.ws, deviceId: 'd-03', token: deviceToken('d-03') });
  online.on('error', () => {});
  await online.connect();
});
afterAll(async () => {
  await online?.close();
  await gw?.close();
});

const ids = (b: DeviceList) => b.devices.map((d) => d.id);

describe('GET /api/devices', () => {
  it('lists every device without limit, as before', async () => {
    const { status, body } = await gw.api<DeviceList>('/api/devices');
    expect(status).toBe(200);
    expect(ids(body)).toEqual(IDS);
    expect(body.nextCursor).toBeUndefined();
  });

  it('filters online=true and online=false', async () => {
    expect(ids((await gw.api<DeviceList>('/api/devices?online=true')).body)).toEqual(['d-03']);
    expect(ids((await gw.api<DeviceList>('/api/devices?online=false')).body)).toEqual(['d-01', 'd-02', 'd-04', 'd-05']);
  });

  it('pages with limit and cursor until nextCursor is null', async () => {
    const seen: string[] = [];
    let cursor: string | null | undefined;
    for (let page = 0; page < 10; page++) {
      const { status, body } = await gw.api<DeviceList>(`/api/devices?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(status).toBe(200);
      expect(body.devices.length).toBeLessThanOrEqual(2);
      expect(body.total).toBe(5);
      seen.push(...ids(body));
      cursor = body.nextCursor;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    expect(seen).toEqual(IDS);
    // With a filter: pages of the filtered list.
    const off = (await gw.api<DeviceList>('/api/devices?online=false&limit=3')).body;
    expect(off).toMatchObject({ total: 4, nextCursor: 'd-04' });
    expect(ids(off)).toEqual(['d-01', 'd-02', 'd-04']);
  });

  it.each([
    ['online=maybe', 'online'],
    ['limit=0', 'limit'],
    ['limit=two', 'limit'],
    ['limit=10001', 'limit'],
    ['cursor=bad%20id', 'cursor'],
    ['onlin=true', 'onlin'],
  ])('answers ?%s with 400 BAD_QUERY naming %s', async (query, name) => {
    const { status, body } = await gw.api(`/api/devices?${query}`);
    expect(status).toBe(400);
    expect(body.error.code).toBe('BAD_QUERY');
    expect(body.error.message).toContain(name);
  });
});

describe('GET /api/devices/{id}', () => {
  it('answers a malformed id with 400 BAD_DEVICE_ID, an unknown one with 404', async () => {
    const bad = await gw.api('/api/devices/bad%20id');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_DEVICE_ID');
    expect((await gw.api('/api/devices/bad%20id/history?channel=1')).status).toBe(400);
    const unknown = await gw.api('/api/devices/no-such-device');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('DEVICE_NOT_FOUND');
  });
});
