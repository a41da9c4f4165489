/**
 * The device page (`#/device/<id>`): its state, a live chart per channel with a window selector,
 * and the command console. On open each chart loads its window from the history API, then the
 * `device:<id>` stream appends to it. When the stream could not be replayed after a reconnect
 * (`too_old`), the gap is loaded from history, so the charts stay gap-free.
 */
import { alarmBadgeElement, paintAlarmBadge } from './alarm-badge.js';
import { filterQuery, marksFor, DEFAULT_FILTER, type AlarmStore } from './alarms.js';
import { ApiError, getDevice, history, listAlarms } from './api.js';
import { channelsOf, commandsOf, onDeviceTypes, typeName, type ChannelInfo } from './channels.js';
import { ChannelChart } from './charts.js';
import { CommandPanel } from './commands.js';
import type { FleetState } from './fleet-state.js';
import { ago, clock, compact, offlineCauseText } from './format.js';
import { schedule } from './frame.js';
import type { LiveClient } from './live.js';
import type { DeviceMessage, DeviceSummary } from './types.js';

export const WINDOWS = [
  { label: '1 min', ms: 60_000 },
  { label: '5 min', ms: 5 * 60_000 },
  { label: '15 min', ms: 15 * 60_000 },
  { label: '60 min', ms: 60 * 60_000 },
] as const;

const WINDOW_KEY = 'gateway.chartWindowMs';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function savedWindow(): number {
  const v = Number(localStorage.getItem(WINDOW_KEY));
  return WINDOWS.some((w) => w.ms === v) ? v : WINDOWS[0].ms;
}

export class DeviceView {
  readonly root: HTMLElement;
  private readonly stream: string;
  private readonly charts = new Map<number, ChannelChart>();
  private readonly chartGrid: HTMLElement;
  private readonly chartNote: HTMLElement;
  /** Says when history could not be loaded (e.g. HISTORY_OWNER_UNAVAILABLE in a cluster): never a silently thin chart. */
  private readonly historyNote: HTMLElement;
  private readonly title: HTMLElement;
  private readonly typeEl: HTMLElement;
  private readonly badge: HTMLElement;
  /** Open alarms of the device (links to the alarm list filtered to it). */
  private readonly alarmBadge: HTMLElement;
  private readonly stateBody: HTMLElement;
  private readonly counters: HTMLElement;
  private readonly windowButtons = new Map<number, HTMLButtonElement>();
  private readonly commands: CommandPanel;
  private readonly offs: (() => void)[] = [];
  private readonly abort = new AbortController();
  private windowMs = savedWindow();
  private slideTimer: number | undefined;
  private stateTimer: number | undefined;
  private destroyed = false;
  private historyLoaded = false;
  /** Per channel, the newest point before the live stream was interrupted: where a gap would start. */
  private gapFrom = new Map<number, number | undefined>();
  private interrupted = false;
  /** When the live connection to the gateway was lost (undefined while it is up): what the page shows is as of then. */
  private staleSince: number | undefined;
  private readonly renderDue = () => this.renderCharts(false);
  private readonly renderNow = () => this.renderCharts(true);

  constructor(
    readonly deviceId: string,
    private readonly fleet: FleetState,
    private readonly live: LiveClient,
    private readonly now: () => number,
    private readonly alarms: AlarmStore,
  ) {
    this.stream = `device:${deviceId}`;
    this.root = el('section', 'view device-view');
    this.root.setAttribute('aria-label', `Device ${deviceId}`);

    const toolbar = el('div', 'toolbar');
    const back = el('a', 'back', '← Fleet');
    back.href = '#/';
    this.title = el('h1', 'view-title', deviceId);
    this.title.dataset.testid = 'device-title';
    this.typeEl = el('span', 'muted');
    this.badge = el('span', 'badge');
    this.badge.dataset.testid = 'device-online';
    this.alarmBadge = alarmBadgeElement('device-alarms', 'a');
    (this.alarmBadge as HTMLAnchorElement).href = `#/alarms?${filterQuery({ ...DEFAULT_FILTER, device: deviceId })}`;
    const seg = el('div', 'segmented');
    seg.setAttribute('role', 'group');
    seg.setAttribute('aria-label', 'Chart window');
    for (const w of WINDOWS) {
      const b = el('button', 'seg', w.label);
      b.type = 'button';
      b.dataset.testid = `window-${w.ms / 60_000}m`;
      b.addEventListener('click', () => this.setWindow(w.ms));
      seg.append(b);
      this.windowButtons.set(w.ms, b);
    }
    toolbar.append(back, this.title, this.typeEl, this.badge, this.alarmBadge, el('span', 'spacer'), el('span', 'muted small', 'Window'), seg);

    const grid = el('div', 'device-grid');
    const main = el('div', 'charts-col');
    this.chartNote = el('p', 'muted chart-note', 'Waiting for readings…');
    this.chartGrid = el('div', 'chart-grid');
    this.historyNote = el('p', 'chart-note history-note');
    this.historyNote.setAttribute('role', 'status');
    this.historyNote.hidden = true;
    main.append(this.chartNote, this.historyNote, this.chartGrid);
    const aside = el('aside', 'side-col');
    const stateCard = el('section', 'card device-state');
    stateCard.dataset.testid = 'device-state';
    this.stateBody = el('dl', 'facts');
    this.counters = el('div', 'counters');
    stateCard.append(el('h2', 'card-title', 'State'), this.stateBody, this.counters);
    this.commands = new CommandPanel(deviceId);
    aside.append(stateCard, this.commands.root);
    grid.append(main, aside);
    this.root.append(toolbar, grid);
    this.markWindow();
  }

  mount(parent: HTMLElement): void {
    parent.replaceChildren(this.root);
    const entry = this.fleet.get(this.deviceId);
    if (entry) this.showState(entry.summary);
    this.ensureCharts(entry?.summary);

    this.offs.push(
      this.fleet.on('change', (c) => {
        if (!c.ids.has(this.deviceId)) return;
        const s = this.fleet.get(this.deviceId)?.summary;
        if (s) schedule(this.stateTask);
      }),
      onDeviceTypes(() => this.typesChanged()),
      this.live.on('device', (m) => m.id === this.deviceId && this.onPoints(m)),
      this.live.on('command', (c) => this.commands.update(c)),
      this.alarms.on('change', (c) => {
        if (!c.devices.has(this.deviceId)) return;
        this.showAlarms();
        // An alarm cleared while the page was not listening: fetch its record, so its mark stays.
        if (c.stale) void this.loadAlarms();
      }),
      this.live.on('connection', (info) => {
        if (info.state !== 'connected') this.noteInterruption();
        this.markStale(info.state !== 'connected');
      }),
      this.live.on('missed', (m) => {
        if (m.streams.includes(this.stream)) this.noteInterruption();
        if (m.streams.includes('commands')) void this.commands.load();
      }),
      this.live.on('resumed', (r) => {
        if (r.deviceId !== this.deviceId) return;
        if (r.ok) this.endInterruption();
        else void this.fillGap();
      }),
      this.live.on('reconnected', () => {
        void this.commands.load();
        // Nothing to resume from (no message had arrived yet): load the outage from history instead.
        if (this.live.lastSeq(this.stream) === undefined) void this.fillGap();
      }),
    );
    this.markStale(this.live.connection.state !== 'connected');
    this.live.subscribe(this.stream, 'commands');
    void this.commands.load();
    void this.loadDevice();
    this.showAlarms();
    void this.loadAlarms();
    // After this task the charts have laid out and know their width: ask for that many points.
    window.setTimeout(() => void this.loadHistory(), 0);
    // Charts slide with the clock and take new points at their own pace (ChannelChart.render); the state card ticks each second.
    this.slideTimer = window.setInterval(() => schedule(this.renderDue), 100);
    this.stateTimer = window.setInterval(() => schedule(this.stateTask), 1000);
  }

  private readonly stateTask = () => {
    const s = this.fleet.get(this.deviceId)?.summary;
    if (s) this.showState(s);
  };

  destroy(): void {
    this.destroyed = true;
    this.abort.abort();
    window.clearInterval(this.slideTimer);
    window.clearInterval(this.stateTimer);
    for (const off of this.offs.splice(0)) off();
    this.live.unsubscribe(this.stream, 'commands');
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
    this.root.remove();
  }

  /** The alarm marks drawn on a channel's chart, as raisedAt times (the test hook reads them). */
  chartMarks(channel: number): number[] {
    return this.charts.get(channel)?.marksDrawn ?? [];
  }

  /** The device's alarms, cleared ones too, so the charts mark where each was raised. */
  private async loadAlarms(): Promise<void> {
    try {
      this.alarms.upsert(await listAlarms({ device: this.deviceId, limit: 200 }, this.abort.signal));
    } catch (err) {
      // The open ones still come live; the page says nothing more for older marks.
      if ((err as Error).name !== 'AbortError') console.warn(`alarms of ${this.deviceId} could not be loaded`, err);
    }
  }

  /** The badge, and a mark on each chart where one of the device's alarms was raised. */
  private showAlarms(): void {
    if (this.destroyed) return;
    paintAlarmBadge(this.alarmBadge, this.alarms.badge(this.deviceId), false);
    const list = this.alarms.forDevice(this.deviceId);
    for (const c of this.charts.values()) c.setMarks(marksFor(list, c.channel.id));
    schedule(this.renderNow);
  }

  /** The chart's timestamps for a channel (the test hook reads them). */
  chartTimes(channel: number): number[] {
    return this.charts.get(channel)?.series.points.map((p) => p.x) ?? [];
  }

  /** A chart's y-axis labels and value header (the test hook reads them). */
  chartText(channel: number): { axis: string[]; value: string } | undefined {
    const c = this.charts.get(channel);
    return c && { axis: c.axisLabels(), value: c.valueText };
  }

  get channels(): number[] {
    return [...this.charts.keys()];
  }

  private async loadDevice(): Promise<void> {
    try {
      const d = await getDevice(this.deviceId);
      if (this.destroyed) return;
      this.fleet.apply([d], false);
      this.showState(d);
      if (this.ensureCharts(d) && this.historyLoaded) void this.loadHistory();
    } catch (err) {
      if (this.destroyed) return;
      if (err instanceof ApiError && err.status === 404) this.showNotFound(err.message);
    }
  }

  private showNotFound(message: string): void {
    const box = el('div', 'empty-state');
    box.dataset.testid = 'device-not-found';
    box.append(el('h2', undefined, `No device "${this.deviceId}"`), el('p', 'muted', message), Object.assign(el('a', 'button', 'Back to the fleet'), { href: '#/' }));
    this.root.replaceChildren(box);
  }

  /** Creates charts for the channels known so far; true when one was added. */
  private ensureCharts(s: DeviceSummary | undefined, extra: string[] = [], extraBools: Set<number> = new Set()): boolean {
    const channels = channelsOf(s?.type, [...Object.keys(s?.last ?? {}), ...extra]);
    let added = false;
    for (const c of channels) {
      if (this.charts.has(c.id)) continue;
      // A channel no type declares is charted by what it carries: on/off steps for true/false, not a 0.9–1.1 line.
      if (c.type === '' && (typeof s?.last?.[c.id]?.value === 'boolean' || extraBools.has(c.id))) c.type = 'bool';
      const chart = new ChannelChart(c, this.windowMs, this.charts.size);
      chart.setMarks(marksFor(this.alarms.forDevice(this.deviceId), c.id));
      this.charts.set(c.id, chart);
      // Keep the cards in channel order.
      const after = [...this.charts.values()].filter((x) => x.channel.id > c.id).sort((a, b) => a.channel.id - b.channel.id)[0];
      if (after) this.chartGrid.insertBefore(chart.root, after.root);
      else this.chartGrid.append(chart.root);
      added = true;
    }
    this.chartNote.hidden = this.charts.size > 0;
    return added;
  }

  /**
   * The gateway's types changed: a channel the type now declares gets its chart, one whose name,
   * unit or range changed is drawn anew (keeping its points), and the commands offered follow.
   */
  private typesChanged(): void {
    if (this.destroyed) return;
    const s = this.fleet.get(this.deviceId)?.summary;
    const now = new Map(channelsOf(s?.type, [...this.charts.keys()]).map((c) => [c.id, c]));
    for (const [id, old] of [...this.charts]) {
      const info = now.get(id);
      if (!info || sameChannel(old.channel, info)) continue;
      if (info.type === '' && old.channel.type === 'bool') info.type = 'bool';
      const chart = new ChannelChart(info, this.windowMs, [...this.charts.keys()].indexOf(id));
      for (const p of old.series.points) chart.add(p.x, p.y);
      this.chartGrid.replaceChild(chart.root, old.root);
      old.destroy();
      this.charts.set(id, chart);
    }
    if (this.ensureCharts(s) && this.historyLoaded) void this.loadHistory([...now.keys()].filter((id) => !this.charts.get(id)?.series.length));
    if (s) this.showState(s);
    schedule(this.renderNow);
  }

  private onPoints(m: DeviceMessage): void {
    const unknown = Object.keys(m.points ?? {}).filter((k) => !this.charts.has(Number(k)));
    const bools = new Set(unknown.filter((k) => typeof m.points?.[k]?.[0]?.[1] === 'boolean').map(Number));
    if (unknown.length > 0 && this.ensureCharts(this.fleet.get(this.deviceId)?.summary, unknown, bools) && this.historyLoaded) {
      void this.loadHistory(unknown.map(Number));
    }
    for (const [k, pts] of Object.entries(m.points ?? {})) {
      const chart = this.charts.get(Number(k));
      if (!chart || !Array.isArray(pts)) continue;
      for (const p of pts) if (Array.isArray(p)) chart.add(p[0], p[1]);
    }
  }

  /** Loads [from, to] of history into the charts (all, or the given channels). */
  private async loadHistory(only?: number[], from?: number, to?: number): Promise<void> {
    this.historyLoaded = true;
    const end = to ?? this.now();
    const start = from ?? end - this.windowMs;
    const charts = [...this.charts.values()].filter((c) => !only || only.includes(c.channel.id));
    await Promise.all(
      charts.map(async (chart) => {
        // The whole window at one bucket per pixel; a gap at least a few hundred points, so it is filled at full detail.
        const perPixel = Math.round((chart.widthPx * (end - start)) / this.windowMs);
        const points = from === undefined ? Math.max(10, perPixel) : Math.max(500, perPixel);
        try {
          const buckets = await history(this.deviceId, chart.channel.id, start, end, points, this.abort.signal);
          for (const b of buckets) chart.add(b.t, b.mean);
          if (from === undefined) this.historyNote.hidden = true;
        } catch (err) {
          if ((err as Error).name === 'AbortError') return;
          console.warn(`history for channel ${chart.channel.id} failed`, err);
          const e = err as Error & { code?: string };
          this.historyNote.textContent = `History of ${chart.channel.name} could not be loaded${e.code ? ` (${e.code})` : ''}: ${e.message}. The chart shows live readings only.`;
          this.historyNote.hidden = false;
        }
      }),
    );
    if (!this.destroyed) schedule(this.renderNow);
  }

  /**
   * While the gateway is unreachable nothing here is current: the page says "last known" and since
   * when, and dims the values, instead of claiming "online" for a device nobody can see.
   */
  private markStale(stale: boolean): void {
    if (stale === (this.staleSince !== undefined)) return;
    this.staleSince = stale ? this.now() : undefined;
    this.root.classList.toggle('stale', stale);
    this.root.dataset.stale = String(stale);
    const s = this.fleet.get(this.deviceId)?.summary;
    if (s) this.showState(s);
  }

  private noteInterruption(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    for (const [id, c] of this.charts) this.gapFrom.set(id, c.series.lastX);
  }

  private endInterruption(): void {
    this.interrupted = false;
    this.gapFrom.clear();
  }

  /** Loads what the live stream could not replay, from where each chart's data stopped. */
  private async fillGap(): Promise<void> {
    const now = this.now();
    const starts = new Map(this.gapFrom);
    this.endInterruption();
    await Promise.all(
      [...this.charts.values()].map((c) => {
        const from = starts.get(c.channel.id) ?? c.series.lastX ?? now - this.windowMs;
        return this.loadHistory([c.channel.id], Math.max(from, now - this.windowMs), now);
      }),
    );
  }

  private setWindow(ms: number): void {
    if (ms === this.windowMs) return;
    const older = ms > this.windowMs;
    const now = this.now();
    this.windowMs = ms;
    try {
      localStorage.setItem(WINDOW_KEY, String(ms));
    } catch {
      // not kept
    }
    this.markWindow();
    for (const c of this.charts.values()) c.setWindow(ms);
    this.renderCharts(true);
    if (older) {
      // Fetch only what is new to the window: the part before the oldest point each chart has.
      for (const c of this.charts.values()) {
        const until = c.series.firstX ?? now;
        if (until > now - ms + 1000) void this.loadHistory([c.channel.id], now - ms, until - 1);
      }
    }
  }

  private markWindow(): void {
    for (const [ms, b] of this.windowButtons) b.setAttribute('aria-pressed', String(ms === this.windowMs));
  }

  private renderCharts(force: boolean): void {
    if (this.destroyed) return;
    const now = this.now();
    for (const c of this.charts.values()) c.render(now, force);
  }

  private showState(s: DeviceSummary): void {
    const now = this.now();
    this.typeEl.textContent = [s.name, typeName(s.type)].filter(Boolean).join(' · ');
    this.commands.offer(commandsOf(s.type));
    const known = s.online ? 'online' : `offline · ${offlineCauseText(s.offlineCause, s.lastSeen)}`;
    const stale = this.staleSince !== undefined;
    this.badge.textContent = stale ? `last known: ${known}` : known;
    this.badge.className = `badge ${stale ? 'stale' : s.online ? 'ok' : 'off'}`;
    this.badge.dataset.state = s.online ? 'online' : 'offline';
    this.badge.title = stale ? `The gateway has been unreachable since ${clock(this.staleSince!)}: this is what it last said.` : '';
    const rows: [string, string][] = [];
    if (stale) rows.push(['Live updates', `interrupted since ${clock(this.staleSince!)} (${ago(this.staleSince!, now)}): the gateway is unreachable, what follows is as of then`]);
    if (s.online) {
      rows.push(['Status', `online${s.transport ? ` over ${s.transport}` : ''}${s.instance ? ` at gateway ${s.instance}` : ''}`]);
      if (s.connectedAt) rows.push(['Connected', `${clock(s.connectedAt)} (${ago(s.connectedAt, now)})`]);
    } else {
      rows.push(['Status', `offline: ${offlineCauseText(s.offlineCause, s.lastSeen)}${s.offlineDetail ? ` (${s.offlineDetail})` : ''}`]);
      if (s.disconnectedAt) rows.push(['Disconnected', `${clock(s.disconnectedAt)} (${ago(s.disconnectedAt, now)})`]);
    }
    rows.push(['Last seen', s.lastSeen ? `${ago(s.lastSeen, now)} · ${clock(s.lastSeen)}` : 'never']);
    if (s.lastError) rows.push(['Last error', s.lastError]);
    this.writeFacts(rows);
    const k = s.counters ?? {};
    this.writeCounters([
      ['frames', k.frames],
      ['readings', k.readings],
      ['connections', k.connections],
      ['duplicates', k.duplicates],
      ['gaps', k.gaps],
      ['errors', k.errors],
    ]);
  }

  private writeCounters(list: [string, number | undefined][]): void {
    const box = this.counters;
    list.forEach(([label, n], i) => {
      let cell = box.children[i] as HTMLElement | undefined;
      if (!cell) {
        cell = el('div', 'counter');
        cell.append(el('span', 'counter-value'), el('span', 'counter-label', label));
        cell.dataset.testid = `counter-${label}`;
        box.append(cell);
      }
      const v = cell.firstElementChild as HTMLElement;
      const text = compact(n);
      if (v.textContent !== text) v.textContent = text;
      cell.classList.toggle('warn', (label === 'errors' || label === 'gaps') && (n ?? 0) > 0);
    });
  }

  private writeFacts(rows: [string, string][]): void {
    // Rewrite only the cells whose text changed.
    const dl = this.stateBody;
    while (dl.children.length > rows.length * 2) dl.lastElementChild!.remove();
    rows.forEach(([term, value], i) => {
      let dt = dl.children[i * 2] as HTMLElement | undefined;
      let dd = dl.children[i * 2 + 1] as HTMLElement | undefined;
      if (!dt || !dd) {
        dt = el('dt');
        dd = el('dd');
        dl.append(dt, dd);
      }
      if (dt.textContent !== term) dt.textContent = term;
      if (dd.textContent !== value) dd.textContent = value;
    });
  }
}

function sameChannel(a: ChannelInfo, b: ChannelInfo): boolean {
  return a.name === b.name && a.unit === b.unit && a.type === b.type && a.min === b.min && a.max === b.max;
}
