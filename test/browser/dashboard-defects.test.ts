/**
 * The dashboard defects a newcomer found (issue 16), each checked in real Chromium against a real
 * gateway: numbers shown with every digit the device sent and axis labels that tell ticks apart;
 * command chips from the device type; a page that says "last known" while the gateway is
 * unreachable; the fleet table on a 390 px phone, an error code whole in the State column, and
 * "1 device".
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { buildDashboard } from '../helpers/dashboard-build.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/** The dashboard's test hook for a chart's texts (dashboard/src/main.ts). */
type ChartTextHook = { chartText(channel: number): { axis: string[]; value: string } | undefined };

const CHROMIUM = requireProgram('chromium', 'chromium');

describe.skipIf(!CHROMIUM)('dashboard defects of issue 16', () => {
  let gw: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const clients: DeviceClient[] = [];
  const pageErrors: string[] = [];
  /** While true, every new /live connection of the page is closed at once (the gateway "unreachable"). */
  let refuseLive = false;
  let liveSockets: { close(o?: { code?: number; reason?: string }): void }[] = [];

  async function device(id: string): Promise<DeviceClient> {
    const c = new DeviceClient({ url: gw.ws, deviceId: id, token: deviceToken(id), backoffInitialMs: 50, backoffMaxMs: 500 });
    c.on('error', () => {});
    clients.push(c);
    await c.connect();
    return c;
  }

  async function login(p: Page): Promise<void> {
    await p.routeWebSocket(/\/live/, (ws) => {
      if (refuseLive) return ws.close({ code: 1013, reason: 'test: gateway unreachable' });
      ws.connectToServer();
      liveSockets.push(ws);
    });
    await p.goto(gw.gateway.loginLink());
    await p.locator('[data-testid=fleet-row]').first().waitFor();
  }

  async function openDevice(id: string): Promise<void> {
    await page.goto(`${gw.http}/#/device/${id}`);
    await page.reload();
    await page.locator('[data-testid=device-title]').waitFor();
    await waitFor(async () => (await page.textContent('[data-testid=device-title]')) === id, `the page of ${id}`);
  }

  const chartText = (channel: number) => page.evaluate((ch) => (window as unknown as { __dashboard?: ChartTextHook }).__dashboard?.chartText(ch), channel);

  beforeAll(async () => {
    await buildDashboard();
    gw = await startGateway();
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 30_000 });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    for (const c of clients) await c.close().catch(() => {});
    await gw?.close();
  });

  it('says "1 device" for a fleet of one', async () => {
    await device('power-0001');
    await login(page);
    await waitFor(async () => /^1 device · 1 online$/.test(((await page.textContent('.fleet-summary')) ?? '').trim()), '"1 device · 1 online"').catch(async (err: Error) => {
      throw new Error(`${err.message}: toolbar says ${JSON.stringify(await page.locator('main').first().innerText())}`);
    });
  });

  it('shows 14002.17 kWh and 74.1934 % with every digit, and y-axis labels that differ', async () => {
    const power = clients[0]!;
    const climate = await device('climate-0001');
    // A few readings close together, ending on the values to read: the axis spans hundredths (energy) and ten-thousandths (humidity).
    const t0 = Date.now() - 10_000;
    for (let i = 0; i <= 4; i++) {
      power.send([{ channel: 4, value: 14002.13 + i * 0.01, type: 'f64' }], t0 + i * 1000);
      climate.send([{ channel: 2, value: 74.193 + i * 0.0001, type: 'f64' }], t0 + i * 1000);
    }
    await openDevice('power-0001');
    const energy = await waitFor(async () => {
      const t = await chartText(4);
      return t && t.value === '14002.17 kWh' && t.axis.length >= 3 ? t : undefined;
    }, 'the energy chart to show 14002.17 kWh').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await chartText(4))}`);
    });
    expect(new Set(energy.axis).size, JSON.stringify(energy.axis)).toBe(energy.axis.length);
    for (const label of energy.axis) expect(label).toMatch(/^-?\d+(\.\d+)?$/);

    await openDevice('climate-0001');
    const humidity = await waitFor(async () => {
      const t = await chartText(2);
      return t && t.value === '74.1934 %' && t.axis.length >= 3 ? t : undefined;
    }, 'the humidity chart to show 74.1934 %').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await chartText(2))}`);
    });
    expect(new Set(humidity.axis).size, JSON.stringify(humidity.axis)).toBe(humidity.axis.length);

    // The fleet table too.
    await page.goto(`${gw.http}/#/`);
    const row = page.locator('[data-testid=fleet-row][data-device-id="power-0001"]');
    await waitFor(async () => ((await row.textContent()) ?? '').includes('14002.17 kWh'), 'the fleet row to show 14002.17 kWh').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await row.textContent()}`);
    });
  });

  it('offers the commands of the device type, with arguments the type accepts', async () => {
    await device('vibration-0001');
    await device('sensor-x');
    const chips = async (id: string) => {
      await openDevice(id);
      await page.waitForTimeout(300);
      return page.locator('[data-testid=command-chip]').allTextContents();
    };
    await waitFor(async () => (await chips('vibration-0001')).includes('set-threshold'), 'the vibration chips');
    expect(await page.locator('[data-testid=command-chip]').allTextContents()).toEqual(['set-interval', 'reboot', 'set-threshold']);
    await page.click('[data-testid=command-chip]:text-is("set-threshold")');
    expect(JSON.parse(await page.inputValue('[data-testid=command-args]'))).toEqual({ value: 12 });
    expect(await chips('climate-0001')).toEqual(['set-interval', 'reboot']);
    expect(await chips('sensor-x')).toEqual([]);
  });

  it('charts a bool channel that no device type declares as off/on, not on a 0.9–1.1 axis', async () => {
    const c = await device('sensor-bool');
    const t0 = Date.now() - 5000;
    for (let i = 0; i < 4; i++) c.send([{ channel: 5, value: true, type: 'bool' }], t0 + i * 1000);
    await openDevice('sensor-bool');
    const text = await waitFor(async () => {
      const t = await chartText(5);
      return t && t.value === 'on' && t.axis.length > 0 ? t : undefined;
    }, 'the bool chart').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await chartText(5))}`);
    });
    expect(text.axis).toEqual(['off', 'on']);
  });

  it('marks the device page stale while the gateway is unreachable, and live again after', async () => {
    await openDevice('climate-0001');
    const badge = page.locator('[data-testid=device-online]');
    await waitFor(async () => (await badge.textContent()) === 'online', 'the badge to say online');
    refuseLive = true;
    for (const ws of liveSockets.splice(0)) ws.close({ code: 1006, reason: 'test: cut' });
    await waitFor(async () => (await page.getAttribute('.device-view', 'data-stale')) === 'true', 'the page to be marked stale');
    expect(await badge.textContent()).toBe('last known: online');
    expect(await page.textContent('[data-testid=device-state]')).toMatch(/interrupted since \d\d:\d\d:\d\d/);
    // The fleet page greys out "online" too.
    expect(await page.evaluate(() => document.body.dataset.live)).toBe('stale');
    refuseLive = false;
    await waitFor(async () => (await page.getAttribute('.device-view', 'data-stale')) === 'false', 'the page to be live again', 20_000);
    expect(await badge.textContent()).toBe('online');
    expect(await page.evaluate(() => document.body.dataset.live)).toBe('live');
  });

  it('shows the error code that ended a connection whole in the State column', async () => {
    const raw = await RawDevice.connect(gw.ws, 'climate-0009', deviceToken('climate-0009'));
    raw.send(new Uint8Array([1, 1, 0]));
    await raw.closed;
    await page.goto(`${gw.http}/#/`);
    const code = page.locator('[data-testid=fleet-row][data-device-id="climate-0009"] .state-code');
    await waitFor(async () => /^FRAME_[A-Z_]+$/.test((await code.textContent()) ?? ''), 'the code in the State column');
    // Not cut off: the text fits its box.
    expect(await code.evaluate((e) => e.scrollWidth <= e.clientWidth)).toBe(true);
  });

  it('fits the fleet table on a 390 px phone without sideways scrolling', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      await login(p);
      await waitFor(async () => (await p.locator('[data-testid=fleet-row]').count()) >= 4, 'the fleet rows');
      const widths = await p.evaluate(() => ({ doc: document.documentElement.scrollWidth, view: window.innerWidth, table: document.querySelector('.fleet-table')?.scrollWidth ?? 0 }));
      expect(widths.doc, JSON.stringify(widths)).toBeLessThanOrEqual(widths.view);
      expect(widths.table, JSON.stringify(widths)).toBeLessThanOrEqual(widths.view);
      // The id and the state are still readable.
      const row = p.locator('[data-testid=fleet-row][data-device-id="power-0001"]');
      expect(await row.locator('.dev-id').isVisible()).toBe(true);
      expect(await row.locator('.c-state').isVisible()).toBe(true);
    } finally {
      await phone.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
