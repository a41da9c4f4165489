/**
 * The dashboard end to end: a real gateway (in-process, serving dashboard/dist), real devices
 * through the SDK, and real Chromium with a profile on disk. Login with the printed one-time link,
 * fleet, device charts, a command to `acked`, gap-free charts across a cut live connection (resumed
 * from the ring, and reloaded from history when the ring is too short), logout, and then the
 * profile searched for the operator token and the login code (README "Operator login").
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DeviceClient } from '../../devices/sdk/index.js';
import { deviceToken, OPERATOR_TOKEN, ROOT, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { buildDashboard } from '../helpers/dashboard-build.js';
import { requireProgram } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

declare global {
  interface Window {
    /** Test hooks the dashboard exposes (dashboard/src/main.ts). */
    __live?: { socket?: { close(): void }; lastSeq(stream: string): number | undefined; counts: { connects: number; resumesOk: number; resumesTooOld: number; missed: number } };
    __dashboard?: { chartTimes(channel: number): number[] };
  }
}

const CHROMIUM = requireProgram('chromium', 'chromium');
const SCREENSHOTS = join(ROOT, 'artifacts/screenshots');
const SEND_EVERY_MS = 100;
/** The replay ring per device stream: 20 messages = 2 s at the 100 ms flush, so a longer outage is `too_old`. */
const LIVE_REPLAY = 20;
const COMMAND_DEVICE = 'climate-0001';

/**
 * Holes in a chart: steps between consecutive chart timestamps (from `from` on) longer than
 * 3 × the send interval during which the device did send something. (On a busy machine a device's
 * own timer can stall; a hole the device made itself is not the dashboard's.)
 */
/** Files under `dir` whose bytes contain `secret` (as UTF-8, UTF-16 or URL-encoded). */
function filesContaining(dir: string, secret: string): string[] {
  const needles = [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le'), Buffer.from(encodeURIComponent(secret), 'utf8')];
  const found: string[] = [];
  const walk = (path: string) => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) return readdirSync(path).forEach((name) => walk(join(path, name)));
    if (!st.isFile()) return;
    const bytes = readFileSync(path);
    if (needles.some((n) => bytes.includes(n))) found.push(path.slice(dir.length + 1));
  };
  walk(dir);
  return found;
}

function holes(chart: number[], sent: number[], from: number): { from: number; to: number; missing: number }[] {
  const out: { from: number; to: number; missing: number }[] = [];
  for (let i = 1; i < chart.length; i++) {
    const a = chart[i - 1]!;
    const b = chart[i]!;
    if (b < from || b - a <= 3 * SEND_EVERY_MS) continue;
    const missing = sent.filter((t) => t > a && t < b).length;
    if (missing > 0) out.push({ from: a, to: b, missing });
  }
  return out;
}

describe.skipIf(!CHROMIUM)('dashboard in Chromium against a real gateway', () => {
  let gw: TestGateway;
  let context: BrowserContext;
  let userDataDir: string;
  let page: Page;
  const clients: DeviceClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  const pageErrors: string[] = [];
  /** Every URL the browser requested or opened a WebSocket to. */
  const requested: string[] = [];
  /** The login codes of the links the browser opened. */
  const codes: string[] = [];

  function device(id: string): DeviceClient {
    const c = new DeviceClient({ url: gw.ws, deviceId: id, token: deviceToken(id), backoffInitialMs: 50, backoffMaxMs: 500 });
    c.on('error', () => {});
    clients.push(c);
    return c;
  }

  /** Times at which the command device sent its readings. */
  const sentTimes: number[] = [];

  /** Sends a reading on every channel of the device's type every SEND_EVERY_MS. */
  function stream(c: DeviceClient, channels: number[], record?: number[]): void {
    let i = 0;
    timers.push(
      setInterval(() => {
        i++;
        const t = Date.now();
        c.send(
          channels.map((ch) => ({ channel: ch, value: 20 + ch * 10 + Math.sin(i / 10) * 3, type: 'f32' as const })),
          t,
        );
        record?.push(t);
      }, SEND_EVERY_MS),
    );
  }

  const chartTimes = (channel: number) => page.evaluate((ch) => window.__dashboard?.chartTimes(ch) ?? [], channel);
  const counts = () => page.evaluate(() => ({ ...window.__live!.counts }));
  const connectionState = () => page.getAttribute('[data-testid=connection-state]', 'data-state');

  beforeAll(async () => {
    await buildDashboard();
    gw = await startGateway({ liveReplay: LIVE_REPLAY });

    const answering = device(COMMAND_DEVICE);
    answering.onCommand('set-interval', (args) => ({ ok: true, args }));
    const fleet = [answering, device('climate-0002'), device('power-0001'), device('sensor-x')];
    await Promise.all(fleet.map((c) => c.connect()));
    stream(fleet[0]!, [1, 2, 3], sentTimes);
    stream(fleet[1]!, [1, 2, 3]);
    stream(fleet[2]!, [1, 2, 3, 4]);
    stream(fleet[3]!, [0]);

    userDataDir = tempDir('chromium-profile-');
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM!,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
      viewport: { width: 1280, height: 800 },
      timeout: 30_000,
    });
    context.setDefaultTimeout(15_000);
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    context.on('request', (r) => requested.push(r.url()));
    context.on('page', (p) => p.on('websocket', (ws) => requested.push(ws.url())));
    page.on('websocket', (ws) => requested.push(ws.url()));
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    await context?.close().catch(() => {});
    for (const c of clients) await c.close().catch(() => {});
    await gw?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('logs in with the printed one-time link and shows the fleet live', async () => {
    // What `gateway` prints as "dashboard: …" (gateway/cli.ts prints gateway.loginLink()).
    const link = gw.gateway.loginLink();
    codes.push(/#code=(.+)$/.exec(link)![1]!);
    await page.goto(link);
    await waitFor(async () => (await page.locator('[data-testid=fleet-row]').count()) >= 4, 'four fleet rows', 15_000);
    expect(page.url()).toBe(`${gw.http}/`);
    expect(await page.evaluate(() => window.history.length)).toBeLessThanOrEqual(2);
    // The session is a cookie the page cannot read; nothing is kept in its storage.
    expect(await page.evaluate(() => [document.cookie, sessionStorage.length, localStorage.length])).toEqual(['', 0, 0]);
    const [cookie] = await context.cookies(gw.http);
    expect(cookie).toMatchObject({ name: `gateway_session_${gw.gateway.port}`, httpOnly: true, sameSite: 'Strict', secure: false });

    const row = page.locator(`[data-testid=fleet-row][data-device-id="${COMMAND_DEVICE}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-online')).toBe('true');
    // Names and units from the device type; a device without a type gets "channel N".
    await waitFor(async () => /temperature [\d.]+ °C/.test((await row.textContent()) ?? ''), 'climate values with units');
    await waitFor(async () => /channel 0 [\d.]+/.test((await page.locator('[data-testid=fleet-row][data-device-id="sensor-x"]').textContent()) ?? ''), 'untyped device values');
    await waitFor(async () => (await connectionState()) === 'connected', 'the live connection');
    await waitFor(async () => /\d+ \/ \d+/.test((await page.textContent('[data-testid=stat-devices]')) ?? ''), 'the gateway panel');

    // Search narrows the list; clearing it brings everything back.
    await page.fill('[data-testid=fleet-search]', 'power');
    await waitFor(async () => (await page.locator('[data-testid=fleet-row]').count()) === 1, 'one power row');
    await page.fill('[data-testid=fleet-search]', '');
    await waitFor(async () => (await page.locator('[data-testid=fleet-row]').count()) >= 4, 'all rows again');
    await page.waitForTimeout(3000); // let the sparklines draw a few points for the screenshot
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet.png') });
  });

  it('opens a device: charts load history, then gain live points', async () => {
    await page.click(`[data-testid=fleet-row][data-device-id="${COMMAND_DEVICE}"]`);
    await waitFor(() => page.url().endsWith(`#/device/${COMMAND_DEVICE}`), 'the device route');
    await waitFor(async () => (await page.locator('[data-testid=device-chart]').count()) === 3, 'three channel charts');
    const first = await waitFor(async () => {
      const t = await chartTimes(1);
      return t.length > 5 ? t : undefined;
    }, 'history in the chart');
    const more = await waitFor(async () => {
      const t = await chartTimes(1);
      return t.length >= first.length + 5 && t[t.length - 1]! > first[first.length - 1]! ? t : undefined;
    }, 'live points in the chart');
    expect(holes(more, sentTimes, 0)).toEqual([]);
    expect(await page.textContent('[data-testid=device-title]')).toBe(COMMAND_DEVICE);
  });

  it('sends a command and shows it reach acked', async () => {
    // Arguments are checked before anything is sent.
    await page.fill('[data-testid=command-name]', 'set-interval');
    await page.fill('[data-testid=command-args]', '{"ms": ');
    expect(await page.isDisabled('[data-testid=command-send]')).toBe(true);
    await page.fill('[data-testid=command-args]', '{"ms": 250}');
    expect(await page.isDisabled('[data-testid=command-send]')).toBe(false);
    await page.click('[data-testid=command-send]');

    const item = page.locator('[data-testid=command]').first();
    await waitFor(async () => (await item.getAttribute('data-state')) === 'acked', 'the command to be acked', 15_000);
    expect(await item.locator('[data-testid=command-state]').textContent()).toMatch(/acked/i);
    const steps = await item.locator('.timeline .step-name').allTextContents();
    expect(steps[0]).toBe('queued');
    expect(steps).toContain('sent');
    expect(steps[steps.length - 1]).toBe('acked');
    expect(await item.textContent()).toContain('"ms":250');
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(SCREENSHOTS, 'device.png') });

    // An error answer is shown with its code: a name the gateway refuses.
    await page.fill('[data-testid=command-name]', 'x'.repeat(100));
    await page.fill('[data-testid=command-args]', '');
    await page.click('[data-testid=command-send]');
    await page.locator('[data-testid=command-error]').waitFor({ state: 'visible' });
    expect(await page.textContent('[data-testid=command-error]')).toContain('BAD_COMMAND');
    await page.screenshot({ path: join(SCREENSHOTS, 'command-error.png') });
  });

  it('resumes a cut live connection without a gap (replayed from the ring)', async () => {
    const before = await counts();
    const cutAt = Date.now();
    await page.evaluate(() => window.__live!.socket!.close());
    await waitFor(async () => (await counts()).connects > before.connects, 'a reconnect');
    await waitFor(async () => (await counts()).resumesOk > before.resumesOk, 'the resume to be answered ok');
    await waitFor(async () => (await connectionState()) === 'connected', 'the indicator to say connected');
    // Wait until live points arrive well after the cut, then look for holes around it.
    await waitFor(async () => ((await chartTimes(1)).at(-1) ?? 0) > Date.now() - 300 && ((await chartTimes(1)).at(-1) ?? 0) > cutAt + 1500, 'live points after the reconnect');
    const times = await chartTimes(1);
    expect(holes(times, sentTimes, cutAt - 2000)).toEqual([]);
    // Dense across the cut: about one point per send.
    const sentAcross = sentTimes.filter((t) => t >= cutAt - 2000 && t <= times.at(-1)!).length;
    expect(times.filter((t) => t >= cutAt - 2000).length).toBeGreaterThanOrEqual(sentAcross * 0.9);
  });

  /**
   * From here on /live goes through a Playwright route, so the test can cut it ("refuse": every new
   * connection is closed at once) or act as a slow consumer the gateway drops messages for ("drop":
   * the command device's messages are swallowed).
   */
  let liveMode: 'pass' | 'refuse' | 'drop' = 'pass';
  /** How many of the command device's messages "drop" mode has swallowed. */
  let dropped = 0;
  let toPage: { send(message: string): void } | undefined;
  /** What went through the route besides device messages, for a failure's message. */
  const trace: string[] = [];
  let routed = 0;
  async function routeLive(): Promise<void> {
    await page.routeWebSocket(/\/live/, (ws) => {
      if (liveMode === 'refuse') return ws.close({ code: 1013, reason: 'test outage' });
      const server = ws.connectToServer();
      const conn = ++routed;
      ws.onMessage((m) => {
        trace.push(`${Date.now()} #${conn} page→gw ${String(m).slice(0, 160)}`);
        server.send(m);
      });
      server.onMessage((m) => {
        if (typeof m === 'string' && !/^{"type":"(device|fleet|stats)"/.test(m)) trace.push(`${Date.now()} #${conn} gw→page ${m.slice(0, 160)}`);
        if (liveMode === 'drop' && typeof m === 'string' && m.startsWith('{"type":"device"') && m.includes(`"id":"${COMMAND_DEVICE}"`)) {
          dropped++;
          return;
        }
        ws.send(m);
      });
      toPage = ws;
    });
  }

  it('fills a longer outage from history when the ring no longer reaches back (too_old)', async () => {
    await routeLive();
    const before = await counts();
    const cutAt = Date.now();
    // Refuse every new /live connection for 4 s (longer than the 2 s ring), then let them through.
    liveMode = 'refuse';
    await page.evaluate(() => window.__live!.socket!.close());
    await waitFor(async () => ['reconnecting', 'offline'].includes((await connectionState()) ?? ''), 'the indicator to show the outage');
    await page.waitForTimeout(4000);
    liveMode = 'pass';
    await waitFor(async () => (await counts()).resumesTooOld > before.resumesTooOld, 'a too_old resume answer', 20_000);
    await waitFor(async () => (await connectionState()) === 'connected', 'the indicator to say connected', 15_000);
    await waitFor(async () => ((await chartTimes(1)).at(-1) ?? 0) > Date.now() - 300, 'live points after the outage');
    // The history load is asynchronous: poll until the hole is filled.
    await waitFor(async () => holes(await chartTimes(1), sentTimes, cutAt - 2000).length === 0, 'the outage to be filled from history', 10_000).catch(() => {});
    expect(holes(await chartTimes(1), sentTimes, cutAt - 2000)).toEqual([]);
  });

  it('repairs messages the gateway dropped for it (missed) by resuming the device stream', async () => {
    await waitFor(() => toPage !== undefined, 'the routed live connection');
    // The previous test may end (its gap filled from history) before a live message follows its
    // too_old answer: resuming needs a position, so wait for one.
    await waitFor(() => page.evaluate((stream) => window.__live!.lastSeq(stream) !== undefined, `device:${COMMAND_DEVICE}`), 'a live message applied since the last start-over');
    const before = await counts();
    const dropFrom = Date.now();
    // Swallow a number of messages, not a time span: the ring holds LIVE_REPLAY messages, and on a
    // loaded machine a second can outlast it, which would make the answer too_old instead.
    dropped = 0;
    liveMode = 'drop';
    await waitFor(() => dropped >= 5, 'five device messages swallowed');
    // What the gateway sends a client that fell behind, once it has caught up.
    toPage!.send(JSON.stringify({ type: 'missed', count: 10, streams: [`device:${COMMAND_DEVICE}`] }));
    liveMode = 'pass';
    // On a timeout, say where the page stood.
    const state = async () =>
      JSON.stringify({ before, now: await counts(), connection: await connectionState(), lastPoint: Date.now() - ((await chartTimes(1)).at(-1) ?? 0), dropFrom, trace: trace.slice(-25) });
    await waitFor(async () => {
      const now = await counts();
      return now.resumesOk > before.resumesOk || now.resumesTooOld > before.resumesTooOld;
    }, 'the resume after missed').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await state()}`);
    });
    expect((await counts()).resumesTooOld).toBe(before.resumesTooOld);
    expect((await counts()).missed).toBe(before.missed + 10);
    await waitFor(async () => ((await chartTimes(1)).at(-1) ?? 0) > Date.now() - 300, 'live points after the drop').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await state()}`);
    });
    expect(holes(await chartTimes(1), sentTimes, dropFrom - 1000)).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('takes a spent link in a browser that is logged in, and explains a refused link, token or session', async () => {
    // The first link again (spent): this browser still has its session, so the fleet shows.
    const again = await context.newPage();
    await again.goto(`${gw.http}/#code=${codes[0]}`);
    await waitFor(async () => (await again.locator('[data-testid=fleet-row]').count()) >= 4, 'the fleet after a spent link');
    expect(again.url()).toBe(`${gw.http}/`);
    await again.close();

    // A wrong token in an old-style link, in a browser without a session: refused, and said why.
    const browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 30_000 });
    const fresh = await browser.newContext();
    fresh.setDefaultTimeout(15_000);
    try {
      const wrong = await fresh.newPage();
      await wrong.goto(`${gw.http}/?token=not-the-token`);
      const card = wrong.locator('[data-testid=auth-error]');
      await card.waitFor({ state: 'visible' });
      expect(await card.getAttribute('data-problem')).toBe('refused');
      expect(await card.textContent()).toMatch(/refused this login link[\s\S]*UNAUTHORIZED[\s\S]*printed when it started/);
      expect(wrong.url()).toBe(`${gw.http}/`);
      await wrong.screenshot({ path: join(SCREENSHOTS, 'auth-error.png') });
      const spent = await fresh.newPage();
      await spent.goto(`${gw.http}/#code=${codes[0]}`);
      await spent.locator('[data-testid=auth-error][data-problem=refused]').waitFor({ state: 'visible' });
      expect(await spent.textContent('[data-testid=auth-error]')).toContain('LOGIN_CODE_USED');
      expect(spent.url()).toBe(`${gw.http}/`);
      const missing = await fresh.newPage();
      await missing.goto(`${gw.http}/`);
      await missing.locator('[data-testid=auth-error][data-problem=missing]').waitFor({ state: 'visible' });
    } finally {
      await browser.close();
    }

    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${gw.ws}/live?token=not-the-token`);
      const t = setTimeout(() => reject(new Error('no answer to the /live upgrade within 5 s')), 5000);
      ws.on('unexpected-response', (_req, res) => {
        clearTimeout(t);
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => {
        clearTimeout(t);
        ws.close();
        reject(new Error('/live accepted a wrong token'));
      });
      ws.on('error', () => {});
    });
    expect(status).toBe(401);
  });

  it('logs out: the page says so, the cookie is gone, and the API refuses the old session', async () => {
    const [cookie] = await context.cookies(gw.http);
    await page.click('[data-testid=logout]');
    await page.locator('[data-testid=auth-error][data-problem=logged-out]').waitFor({ state: 'visible' });
    expect(await context.cookies(gw.http)).toEqual([]);
    const res = await fetch(`${gw.http}/api/devices`, { headers: { cookie: `${cookie!.name}=${cookie!.value}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('SESSION_ENDED');
    await page.reload();
    await page.locator('[data-testid=auth-error][data-problem=missing]').waitFor({ state: 'visible' });
    expect(pageErrors).toEqual([]);
  });

  it('leaves neither the operator token nor a usable login code in any URL or anywhere in the browser profile', async () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((u) => u.includes(OPERATOR_TOKEN))).toEqual([]);
    expect(requested.filter((u) => codes.some((c) => u.includes(c)))).toEqual([]);
    expect(requested.filter((u) => /\/live\?/.test(u))).toEqual([]);
    // Closing the browser writes History, Sessions, Cookies and the caches to the profile dir.
    await context.close();
    expect(filesContaining(userDataDir, OPERATOR_TOKEN)).toEqual([]);
    // The link the browser opened is in its History (any opened URL is): the code must be spent.
    for (const code of codes) {
      if (filesContaining(userDataDir, code).length === 0) continue;
      const again = await fetch(`${gw.http}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
      expect(again.status).toBe(401);
      expect(((await again.json()) as { error: { code: string } }).error.code).toMatch(/^LOGIN_CODE_(USED|EXPIRED)$/);
    }
  });
});

describe.skipIf(!CHROMIUM)('an old-style dashboard link with ?token=', () => {
  let gw: TestGateway;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    await buildDashboard();
    gw = await startGateway();
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
    await gw?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('still logs in: the token is exchanged once for a session and leaves the address bar; /live and the API go without it', async () => {
    const device = new DeviceClient({ url: gw.ws, deviceId: 'climate-0001', token: deviceToken('climate-0001') });
    device.on('error', () => {});
    await device.connect();
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const later: string[] = [];
      page.on('websocket', (ws) => later.push(ws.url()));
      page.on('request', (r) => later.push(`${r.resourceType()} ${r.url()}`));
      await page.goto(`${gw.http}/?token=${OPERATOR_TOKEN}#/device/climate-0001`);
      await page.locator('[data-testid=device-title]').waitFor();
      await waitFor(async () => (await page.getAttribute('[data-testid=connection-state]', 'data-state')) === 'connected', 'the live connection');
      expect(page.url()).toBe(`${gw.http}/#/device/climate-0001`);
      expect(await page.evaluate(() => [document.cookie, sessionStorage.length, localStorage.length])).toEqual(['', 0, 0]);
      // Only the page itself was asked for with the token (the navigation that brought it).
      const withToken = later.filter((u) => u.includes(OPERATOR_TOKEN));
      expect(new Set(withToken), JSON.stringify(later)).toEqual(new Set([`document ${gw.http}/?token=${OPERATOR_TOKEN}`]));
      expect(later.some((u) => u.endsWith('/live'))).toBe(true);
    } finally {
      await device.close();
    }
  });
});
