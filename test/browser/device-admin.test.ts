/**
 * Device management through the dashboard (issue 17), in real Chromium against a real gateway:
 * add a device with labels and see its token once (copy button), connect with that token, rotate
 * it (the old one works in the grace period), disable it (its connection is closed with 4410 and
 * it is refused), enable it, edit it, filter the fleet page by label, and delete it (the row goes).
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceSummary } from '../../devices/api/json.js';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deviceToken, ROOT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { buildDashboard } from '../helpers/dashboard-build.js';
import { RawDevice } from '../helpers/raw-device.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = requireProgram('chromium', 'chromium');
const SCREENSHOTS = join(ROOT, 'artifacts/screenshots');

/** A promise that must settle within `ms` (a test never waits unbounded). */
function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

describe.skipIf(!CHROMIUM)('device management in the dashboard', () => {
  let gw: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const sockets: RawDevice[] = [];

  /** Opens /device with `token`: 101 when it connects (left open), else the upgrade's HTTP status. */
  async function connect(id: string, token: string): Promise<{ status: number; device?: RawDevice }> {
    try {
      const device = await RawDevice.connect(gw.ws, id, token);
      sockets.push(device);
      return { status: 101, device };
    } catch (err) {
      return { status: (err as { status: number }).status };
    }
  }

  const row = (id: string) => page.locator(`[data-testid=admin-row][data-device-id="${id}"]`);
  const summary = async (id: string) => (await gw.api<DeviceSummary>(`/api/devices/${id}`)).body;

  beforeAll(async () => {
    await buildDashboard();
    gw = await startGateway();
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 30_000 });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.http });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // A fleet-key device, so the fleet page has a row to compare against.
    const other = await connect('power-0009', deviceToken('power-0009'));
    expect(other.status).toBe(101);
    await page.goto(gw.gateway.loginLink());
    await page.locator('[data-testid=fleet-row]').first().waitFor();
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    await browser?.close().catch(() => {});
    await gw?.close();
  });

  it('adds a device, shows its token once with a copy button, and the device connects with it', async () => {
    await page.click('[data-testid=manage-devices]');
    await page.locator('[data-testid=admin-add-form]').waitFor();
    await page.fill('[data-testid=admin-add-id]', 'ui-dev-1');
    await waitFor(async () => (await page.locator('[data-testid=admin-add-type] option').count()) > 1, 'the device types in the form');
    await page.selectOption('[data-testid=admin-add-type]', 'climate');
    await page.fill('[data-testid=admin-add-name]', 'Lobby sensor');
    await page.fill('[data-testid=admin-add-labels]', 'site=north, floor=1');
    await page.click('[data-testid=admin-add]');
    const token = (await page.locator('[data-testid=admin-token]').textContent())!.trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    await page.click('[data-testid=admin-token-copy]');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);
    expect(await summary('ui-dev-1')).toMatchObject({ type: 'climate', name: 'Lobby sensor', labels: { site: 'north', floor: '1' } });
    await row('ui-dev-1').waitFor();
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'device-admin.png') });
    // Shown once: the list and the API never show it again.
    await page.click('[data-testid=admin-token-done]');
    expect(await page.locator('[data-testid=admin-token]').count()).toBe(0);
    expect(await page.locator('main').innerText()).not.toContain(token);

    const { status, device } = await connect('ui-dev-1', token);
    expect(status).toBe(101);
    await waitFor(async () => (await row('ui-dev-1').locator('[data-testid=admin-state]').textContent()) === 'online', 'the row to say online');
    device!.close();
    await within(device!.closed, 'the socket to close');
    (globalThis as { uiToken?: string }).uiToken = token;
  });

  it('rotates the token: the new one is shown once, the old one works during the grace period', async () => {
    const old = (globalThis as { uiToken?: string }).uiToken!;
    await row('ui-dev-1').locator('[data-testid=admin-rotate]').click();
    await page.fill('[data-testid=admin-grace]', '600');
    await page.click('[data-testid=admin-rotate-confirm]');
    const fresh = (await page.locator('[data-testid=admin-token]').textContent())!.trim();
    expect(fresh).toMatch(/^[0-9a-f]{64}$/);
    expect(fresh).not.toBe(old);
    expect(await page.locator('[data-testid=admin-token-box]').innerText()).toContain('old token works until');
    await page.click('[data-testid=admin-token-done]');
    const withOld = await connect('ui-dev-1', old);
    expect(withOld.status).toBe(101);
    withOld.device!.close();
    await within(withOld.device!.closed, 'the socket to close');
    const withNew = await connect('ui-dev-1', fresh);
    expect(withNew.status).toBe(101);
    (globalThis as { uiDevice?: RawDevice; uiToken?: string }).uiDevice = withNew.device;
    (globalThis as { uiToken?: string }).uiToken = fresh;
  });

  it('disables the device: its connection is closed with 4410 and it is refused; enable lets it in again', async () => {
    const device = (globalThis as { uiDevice?: RawDevice }).uiDevice!;
    const token = (globalThis as { uiToken?: string }).uiToken!;
    await row('ui-dev-1').locator('[data-testid=admin-disable]').click();
    expect((await within(device.closed, 'the disabled device to be closed')).code).toBe(4410);
    await waitFor(async () => (await row('ui-dev-1').locator('[data-testid=admin-state]').textContent()) === 'disabled', 'the row to say disabled');
    expect((await connect('ui-dev-1', token)).status).toBe(403);
    expect((await summary('ui-dev-1')).disabled).toBe(true);
    await row('ui-dev-1').locator('[data-testid=admin-enable]').click();
    await waitFor(async () => (await summary('ui-dev-1')).disabled === false, 'the device enabled');
    expect((await connect('ui-dev-1', token)).status).toBe(101);
  });

  it('edits name and labels, and the fleet page filters by label', async () => {
    await row('ui-dev-1').locator('[data-testid=admin-edit]').click();
    await page.fill('[data-testid=admin-edit-name]', 'Lobby sensor 2');
    // Typing while devices send: each fleet delta redraws the list, and the field being typed in
    // must keep its focus and caret through it (else the rest of the typing goes nowhere).
    await page.fill('[data-testid=admin-edit-labels]', '');
    await page.keyboard.type('site=south');
    await page.locator('[data-testid=admin-row][data-device-id="power-0009"]').evaluate((e) => ((e as HTMLElement).dataset.before = 'redraw'));
    const sender = sockets[0]!;
    for (let seq = 1; seq <= 3; seq++) sender.send(encodeTelemetry({ epoch: 7, seq, timestamp: Date.now() }, [{ channel: 1, value: seq }]));
    await waitFor(async () => (await page.locator('[data-testid=admin-row][data-before=redraw]').count()) === 0, 'the list redrawn by a fleet delta');
    await page.keyboard.type(', floor=1');
    expect(await page.inputValue('[data-testid=admin-edit-labels]')).toBe('site=south, floor=1');
    await page.click('[data-testid=admin-save]');
    await waitFor(async () => (await summary('ui-dev-1')).name === 'Lobby sensor 2', 'the new name');
    expect((await summary('ui-dev-1')).labels).toEqual({ floor: '1', site: 'south' });

    await page.goto(`${gw.http}/#/`);
    await page.locator('[data-testid=fleet-row]').first().waitFor();
    const rows = async () => page.locator('[data-testid=fleet-row]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.deviceId));
    await waitFor(async () => (await rows()).length === 2, 'both devices on the fleet page');
    await page.fill('[data-testid=fleet-label-filter]', 'site=south');
    await waitFor(async () => JSON.stringify(await rows()) === '["ui-dev-1"]', 'only the device labelled site=south');
    await page.fill('[data-testid=fleet-label-filter]', 'site=south floor=2');
    await waitFor(async () => (await rows()).length === 0, 'no device with both labels');
    await page.fill('[data-testid=fleet-label-filter]', '');
    await waitFor(async () => (await rows()).length === 2, 'both again without a filter');
  });

  it('deletes the device after a confirmation: its row leaves the page and its token stops working', async () => {
    const token = (globalThis as { uiToken?: string }).uiToken!;
    // A second dashboard on the fleet page hears of the deletion over its live stream.
    const watcher = await context.newPage();
    watcher.on('pageerror', (err) => pageErrors.push(err.message));
    await watcher.goto(`${gw.http}/#/`);
    await waitFor(async () => (await watcher.locator('[data-testid=fleet-row]').count()) === 2, 'two rows on the watching page');
    await page.click('[data-testid=manage-devices]');
    await row('ui-dev-1').locator('[data-testid=admin-delete]').click();
    // Nothing happens before the confirmation.
    expect((await gw.api(`/api/devices/ui-dev-1`)).status).toBe(200);
    await page.check('[data-testid=admin-delete-history]');
    await page.click('[data-testid=admin-delete-confirm]');
    await waitFor(async () => (await row('ui-dev-1').count()) === 0, 'the row to leave');
    expect((await gw.api(`/api/devices/ui-dev-1`)).status).toBe(404);
    expect((await connect('ui-dev-1', token)).status).toBe(401);
    // The other dashboard forgot it too: the live fleet stream said it was removed.
    await waitFor(async () => (await watcher.locator('[data-testid=fleet-row]').count()) === 1, 'one row on the watching page');
    expect(await watcher.locator('[data-testid=fleet-row]').getAttribute('data-device-id')).toBe('power-0009');
    await watcher.close();
    expect(pageErrors).toEqual([]);
  });
});
