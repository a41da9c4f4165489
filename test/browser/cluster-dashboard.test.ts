/**
 * The dashboard on one instance of a cluster (in-memory store) when the history of a device lives
 * on another instance that is gone: the device page says so (HISTORY_OWNER_UNAVAILABLE) instead of
 * showing a silently empty chart.
 */
import { rmSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { deviceToken, OPERATOR_TOKEN, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { RawDevice } from '../helpers/raw-device.js';
import { buildDashboard } from '../helpers/dashboard-build.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = requireProgram('chromium', 'chromium');

describe.skipIf(!CHROMIUM || mosquittoPath() === undefined)('the dashboard on one instance of a cluster', () => {
  let broker: Mosquitto;
  let a: TestGateway | undefined;
  let b: TestGateway;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    await buildDashboard();
    broker = await startMosquitto();
    a = await startGateway({ clusterUrl: broker.url, instanceId: 'gw-a', mqttShareGroup: 'browser-cluster' });
    b = await startGateway({ clusterUrl: broker.url, instanceId: 'gw-b', mqttShareGroup: 'browser-cluster' });
    userDataDir = tempDir('chromium-profile-');
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM!,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
      timeout: 30_000,
    });
    context.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await context?.close().catch(() => {});
    await a?.close();
    await b?.close();
    await broker?.stop();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('says the history could not be loaded when the instance holding it is gone', async () => {
    const id = 'climate-0001';
    const d = await RawDevice.connect(a!.ws, id, deviceToken(id));
    const now = Date.now();
    for (let s = 0; s < 5; s++) d.send(encodeTelemetry({ epoch: 1, seq: s, timestamp: now - 5000 + s * 1000 }, [{ channel: 1, value: 20 + s }]));
    await d.waitAck(1, 4);
    d.close();
    await waitFor(async () => (await b.api(`/api/devices/${id}`)).body?.last?.['1'] !== undefined, "A's summary on B");
    // A stops: what it kept in memory goes with it.
    await a!.close();
    a = undefined;
    await waitFor(async () => (await b.api(`/api/devices/${id}/history?channel=1`)).status === 503, 'B to answer HISTORY_OWNER_UNAVAILABLE');

    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${b.http}/?token=${OPERATOR_TOKEN}#/device/${id}`);
    await page.locator('[data-testid=device-title]').waitFor();
    const note = page.locator('.history-note');
    await note.waitFor({ state: 'visible' });
    expect(await note.textContent()).toContain('HISTORY_OWNER_UNAVAILABLE');
  });
});
