/**
 * A device type edited while the gateway runs (issue 17): in real Chromium, the device page shows
 * the new channel with its unit, the changed unit of another, and the new command chip (whose
 * argument schema the console checks), without a reload of the page or a restart of the gateway.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient } from '../../devices/sdk/index.js';
import { buildDashboard } from '../helpers/dashboard-build.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = requireProgram('chromium', 'chromium');

const LEVEL = { id: 1, name: 'level', unit: '%', type: 'f32', min: 0, max: 100 };
const DRAIN = { name: 'drain', hint: 'open the drain valve', example: null, schema: null };
const tank = (channels: unknown[], commands: unknown[]) => ({ types: [{ type: 'tank', name: 'Water tank', channels, commands }] });

describe.skipIf(!CHROMIUM)('device types edited while the gateway runs', () => {
  let dir: string;
  let file: string;
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;
  let client: DeviceClient;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await buildDashboard();
    dir = mkdtempSync(join(tmpdir(), 'types-browser-'));
    file = join(dir, 'types.json');
    writeFileSync(file, JSON.stringify(tank([LEVEL], [DRAIN])));
    gw = await startGateway({ types: file });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 30_000 });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    client = new DeviceClient({ url: gw.ws, deviceId: 'tank-1', token: deviceToken('tank-1'), backoffInitialMs: 50, backoffMaxMs: 500 });
    client.on('error', () => {});
    await client.connect();
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await client?.close().catch(() => {});
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Pixels of a chart drawn in colour (the series; axes, grid and labels are grey). */
  const colouredPixels = (channel: number) =>
    page.evaluate((ch) => {
      const canvas = document.querySelector<HTMLCanvasElement>(`canvas[data-channel="${ch}"]`)!;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 3]! > 200 && Math.max(data[i]!, data[i + 1]!, data[i + 2]!) - Math.min(data[i]!, data[i + 1]!, data[i + 2]!) > 80) n++;
      return n;
    }, channel);
  const caption = (channel: number) => page.locator(`figure.chart-card:has(canvas[data-channel="${channel}"]) figcaption`);

  it('a new channel shows on the device page with its unit, without a reload', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) client.send([{ channel: 1, value: 40 + i, type: 'f32' }], t0 + i);
    await page.goto(gw.gateway.loginLink());
    await page.locator('[data-testid=fleet-row]').first().waitFor();
    await page.goto(`${gw.http}/#/device/tank-1`);
    await caption(1).waitFor();
    expect(await caption(1).textContent()).toMatch(/level\s*\(%\)/);
    expect(await page.locator('[data-testid=command-chip]').allTextContents()).toEqual(['drain']);
    // The console's hints are the type's own commands, never another type's example.
    expect(await page.getAttribute('[data-testid=command-name]', 'placeholder')).toBe('drain');
    expect(await page.getAttribute('[data-testid=command-args]', 'placeholder')).toBe('(empty = null)');
    // A reload would lose this.
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    writeFileSync(file, JSON.stringify(tank([{ ...LEVEL, unit: 'cm' }, { id: 2, name: 'pressure', unit: 'bar', type: 'f32', min: 0, max: 6 }], [{ name: 'fill', hint: 'fill to a level', example: { to: 80 }, schema: { type: 'object', properties: { to: { type: 'number', minimum: 0, maximum: 100 } }, required: ['to'] } }, DRAIN])));

    await caption(2).waitFor({ timeout: 20_000 });
    expect(await caption(2).textContent()).toMatch(/pressure\s*\(bar\)/);
    await waitFor(async () => /level\s*\(cm\)/.test((await caption(1).textContent()) ?? ''), 'the changed unit of channel 1');
    await waitFor(async () => (await page.locator('[data-testid=command-chip]').allTextContents()).join(',') === 'fill,drain', 'the new command chip');
    // The hints follow the type's new first command.
    expect(await page.getAttribute('[data-testid=command-name]', 'placeholder')).toBe('fill');
    expect(await page.getAttribute('[data-testid=command-args]', 'placeholder')).toBe('{"to":80}   (empty = null)');
    // Its schema is checked while typing, as the gateway would.
    await page.click('[data-testid=command-chip]:text-is("fill")');
    expect(await page.inputValue('[data-testid=command-args]')).toBe('{"to":80}');
    expect(await page.isDisabled('[data-testid=command-send]')).toBe(false);
    await page.fill('[data-testid=command-args]', '{"to": 500}');
    expect(await page.textContent('[data-testid=command-args-note]')).toContain('args.to must be from 0 to 100, not 500');
    expect(await page.isDisabled('[data-testid=command-send]')).toBe(true);
    // Readings on the new channel reach its chart.
    const t1 = Date.now();
    client.send([{ channel: 2, value: 2.5, type: 'f32' }], t1);
    await waitFor(async () => ((await page.evaluate((t) => (window as unknown as { __dashboard: { chartTimes(c: number): number[] } }).__dashboard.chartTimes(2).includes(t), t1)) ? true : false), 'the new channel to chart its reading');
    // That one reading is all the new chart has: it must show (a line of one point draws nothing).
    await waitFor(async () => (await colouredPixels(2)) > 0, 'the lone reading to show on its chart');
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
