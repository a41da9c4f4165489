/**
 * Starts the dashboard: logs in with what the link brought (or the session the browser has), opens
 * the live stream, and routes between the fleet overview (`#/`), a device page (`#/device/<id>`),
 * the device admin view (`#/devices`) and the alarm list (`#/alarms?…`).
 */
import './style.css';
import { alarmBadgeElement, paintAlarmBadge } from './alarm-badge.js';
import { AlarmListView } from './alarm-list.js';
import { AlarmStore } from './alarms.js';
import { ApiError, checkSession, listAlarms, listDevices, logOut, onUnauthorized, sessionRefused } from './api.js';
import { showAuthPage, type AuthProblem } from './auth-page.js';
import { applyDeviceTypes, loadDeviceTypes } from './channels.js';
import { ConnectionIndicator } from './connection.js';
import { DeviceAdminView } from './device-admin.js';
import { DeviceView } from './device.js';
import { FleetState } from './fleet-state.js';
import { FleetView } from './fleet.js';
import { LiveClient } from './live.js';
import { logIn } from './login.js';
import { StatsPanel } from './stats.js';

declare global {
  interface Window {
    /** Test hooks: the live client and what the page shows. */
    __live?: LiveClient;
    __dashboard?: {
      view(): 'fleet' | 'device' | 'admin' | 'alarms';
      chartChannels(): number[];
      /** raisedAt of the alarm marks drawn on a channel's chart. */
      chartMarks(channel: number): number[];
      chartTimes(channel: number): number[];
      chartText(channel: number): { axis: string[]; value: string } | undefined;
      fleetSize(): number;
    };
  }
}

const APP_TITLE = 'Telemetry gateway';
/** How often an open dashboard renews its session (the gateway's idle limit is hours). */
const SESSION_RENEW_MS = 5 * 60_000;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function start(): void {
  let clockOffset = 0;
  const now = () => Date.now() + clockOffset;
  const fleet = new FleetState();
  const live = new LiveClient({ origin: window.location.origin, isUnauthorized: sessionRefused });
  let failed = false;
  const renew = window.setInterval(() => {
    checkSession().catch((err: unknown) => {
      // A network error waits for the next try; an ended session ends the page.
      if (err instanceof ApiError && err.status === 401) end(err.code === 'SESSION_ENDED' ? 'ended' : 'missing', err.message);
    });
  }, SESSION_RENEW_MS);
  const end = (problem: AuthProblem, detail?: string) => {
    if (failed) return;
    failed = true;
    window.clearInterval(renew);
    live.stop();
    showAuthPage(problem, detail);
  };
  onUnauthorized((err) => end(err.code === 'SESSION_ENDED' ? 'ended' : 'missing', err.message));
  live.on('connection', (c) => c.state === 'unauthorized' && end('ended', c.reason));
  // While the gateway is unreachable every state on screen is as of the last update: the styles
  // grey out "online" (fleet dots and states; the device page also says "last known").
  live.on('connection', (c) => (document.body.dataset.live = c.state === 'connected' ? 'live' : 'stale'));
  live.on('hello', (h) => (clockOffset = Math.abs(h.clockOffsetMs) > 1000 ? h.clockOffsetMs : 0));
  live.on('fleet', (f) => {
    if (f.removed.length > 0) fleet.remove(f.removed);
    fleet.apply(f.devices, f.full);
  });
  live.on('types', (t) => applyDeviceTypes(t));
  const alarms = new AlarmStore();
  live.on('alarm', (m) => alarms.apply(m));
  // The open alarms, also when the live stream dropped alarm messages for this page.
  const loadOpenAlarms = () =>
    listAlarms({ state: ['active', 'acknowledged'], limit: 500 }).then(
      (list) => alarms.upsert(list),
      (err: unknown) => console.warn('the open alarms could not be loaded', err),
    );
  live.on('missed', (m) => m.streams.includes('alarms') && void loadOpenAlarms());

  // The shell: header with the connection state, the gateway panel, then the current view.
  const header = el('header', 'topbar');
  const bar = el('div', 'bar');
  const brand = el('a', 'brand');
  brand.href = '#/';
  brand.append(el('span', 'brand-mark', '◆'), document.createTextNode(APP_TITLE));
  const connection = new ConnectionIndicator(live);
  const logout = el('button', 'link logout', 'Log out');
  logout.type = 'button';
  logout.dataset.testid = 'logout';
  logout.addEventListener('click', () => {
    logOut().then(
      () => end('logged-out'),
      (err: Error) => window.alert(`Could not log out: ${err.message}`),
    );
  });
  const alarmsLink = el('a', 'nav-link', 'Alarms');
  alarmsLink.href = '#/alarms';
  alarmsLink.dataset.testid = 'nav-alarms';
  const alarmsTotal = alarmBadgeElement('nav-alarm-badge');
  alarmsLink.append(alarmsTotal);
  alarms.on('change', () => paintAlarmBadge(alarmsTotal, alarms.total(), true));
  bar.append(brand, el('span', 'spacer'), alarmsLink, connection.root, logout);
  const stats = new StatsPanel();
  header.append(bar, stats.root);
  live.on('stats', (s) => stats.update(s));
  const banner = el('div', 'banner');
  banner.hidden = true;
  banner.setAttribute('role', 'status');
  const viewEl = el('main', 'main');
  document.body.replaceChildren(header, banner, viewEl);

  const fleetView = new FleetView(fleet, now, alarms);
  const alarmView = new AlarmListView(alarms, fleet, now);
  let deviceView: DeviceView | undefined;
  let adminView: DeviceAdminView | undefined;
  let showingAlarms = false;
  const route = () => {
    if (failed) return;
    const m = /^#\/device\/(.+)$/.exec(window.location.hash);
    const id = m ? decodeURIComponent(m[1]!) : undefined;
    const admin = window.location.hash === '#/devices';
    const a = /^#\/alarms(?:\?(.*))?$/.exec(window.location.hash);
    alarmsLink.setAttribute('aria-current', a ? 'page' : 'false');
    if (deviceView && deviceView.deviceId === id) return;
    if (adminView && admin) return;
    deviceView?.destroy();
    deviceView = undefined;
    adminView?.destroy();
    adminView = undefined;
    if (showingAlarms) alarmView.unmount();
    showingAlarms = false;
    if (admin) {
      fleetView.unmount();
      adminView = new DeviceAdminView(fleet);
      adminView.mount(viewEl);
      document.title = `Devices · ${APP_TITLE}`;
    } else if (a) {
      fleetView.unmount();
      showingAlarms = true;
      alarmView.mount(viewEl, a[1] ?? '');
      document.title = `Alarms · ${APP_TITLE}`;
    } else if (id !== undefined) {
      fleetView.unmount();
      deviceView = new DeviceView(id, fleet, live, now, alarms);
      deviceView.mount(viewEl);
      document.title = `${id} · ${APP_TITLE}`;
    } else {
      fleetView.mount(viewEl);
      document.title = APP_TITLE;
    }
    window.scrollTo(0, 0);
  };
  window.addEventListener('hashchange', route);

  window.__live = live;
  window.__dashboard = {
    view: () => (deviceView ? 'device' : adminView ? 'admin' : showingAlarms ? 'alarms' : 'fleet'),
    chartChannels: () => deviceView?.channels ?? [],
    chartMarks: (ch) => deviceView?.chartMarks(ch) ?? [],
    chartTimes: (ch) => deviceView?.chartTimes(ch) ?? [],
    chartText: (ch) => deviceView?.chartText(ch),
    fleetSize: () => fleet.entries.size,
  };

  void (async () => {
    await loadDeviceTypes();
    try {
      const devices = await listDevices();
      // A live snapshot may have come first; it is newer, so only fill what is missing.
      if (fleet.entries.size === 0) fleet.apply(devices, true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      banner.textContent = `Could not load the device list: ${(err as Error).message}. The page keeps trying over the live connection.`;
      banner.hidden = false;
      live.on('fleet', () => (banner.hidden = true));
    }
    if (failed) return;
    live.subscribe('fleet', 'stats', 'types', 'alarms');
    void loadOpenAlarms();
    live.start();
    route();
  })();
}

logIn().then(
  (r) => (r.ok ? start() : showAuthPage(r.problem, r.detail)),
  (err: Error) => {
    document.body.textContent = `Could not reach the gateway: ${err.message}. Reload to try again.`;
  },
);
