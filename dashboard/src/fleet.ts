/**
 * The fleet overview (`#/`): one row per device with presence, last seen, last values and a
 * sparkline; search, a label filter (`site=north`) and an online/offline filter. Only the rows in view exist in the DOM (fixed row
 * height, rows recycled as they scroll), and only rows whose device changed are rewritten, in one
 * animation frame at most four times a second, so a thousand devices reporting ten times a second
 * stay smooth. Scrolling, search and filter redraw at once.
 */
import { alarmBadgeElement, paintAlarmBadge } from './alarm-badge.js';
import type { AlarmStore } from './alarms.js';
import { channelInfo, typeName } from './channels.js';
import type { FleetChange, FleetEntry, FleetState } from './fleet-state.js';
import { ago, offlineCauseText, reading } from './format.js';
import { schedule } from './frame.js';
import { labelsText, matchesLabels, parseLabels, type LabelPairs } from './label-filter.js';
import { drawSparkline, sparkCanvas } from './sparkline.js';
import type { DeviceSummary } from './types.js';

const ROW_HEIGHT = 44;
const OVERSCAN = 6;
const SPARK_W = 120;
const SPARK_H = 26;
const MAX_VALUES_SHOWN = 4;
/** Least time between two rewrites of changed rows. */
const UPDATE_MS = 250;

type Filter = 'all' | 'online' | 'offline';

interface Row {
  el: HTMLAnchorElement;
  id: string | undefined;
  index: number;
  dot: HTMLElement;
  name: HTMLElement;
  sub: HTMLElement;
  type: HTMLElement;
  state: HTMLElement;
  /** "online" / "offline · cause", and under it the error code that ended the connection, whole. */
  stateMain: HTMLElement;
  stateCode: HTMLElement;
  seen: HTMLElement;
  values: HTMLElement;
  spark: HTMLCanvasElement;
  /** Open alarms of the device: count and worst severity. */
  alarm: HTMLElement;
  /** What the row shows, to skip writes that change nothing. */
  shown: { online?: boolean; state?: string; seen?: string; values?: string; type?: string; sub?: string };
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class FleetView {
  readonly root: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly body: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly summaryText: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly filterButtons = new Map<Filter, HTMLButtonElement>();
  private readonly rows = new Map<string, Row>();
  private readonly pool: Row[] = [];
  private readonly dirty = new Set<string>();
  private list: string[] = [];
  private listDirty = true;
  private allDirty = true;
  private filter: Filter = 'all';
  private query = '';
  private labelPairs: LabelPairs = [];
  private readonly labelInput: HTMLInputElement;
  private mounted = false;
  private clockTimer: number | undefined;
  private readonly unsubscribe: () => void;
  private readonly unsubscribeAlarms: () => void;
  private readonly renderTask = () => this.render();
  private sparkColor = '#2563eb';
  private updateTimer: number | undefined;
  private renderedAt = 0;
  /** Where the list was scrolled when the user opened a device, restored on the way back. */
  private savedScroll = 0;

  constructor(
    private readonly fleet: FleetState,
    private readonly now: () => number,
    private readonly alarms: AlarmStore,
  ) {
    this.root = el('section', 'view fleet-view');
    this.root.setAttribute('aria-label', 'Fleet overview');

    const toolbar = el('div', 'toolbar');
    const title = el('h1', 'view-title', 'Fleet');
    this.summaryText = el('span', 'muted fleet-summary');
    this.summaryText.dataset.testid = 'fleet-summary';
    this.search = el('input', 'search');
    this.search.type = 'search';
    this.search.placeholder = 'Search id, name or type';
    this.search.setAttribute('aria-label', 'Search devices by id, name or type');
    this.search.dataset.testid = 'fleet-search';
    this.search.addEventListener('input', () => {
      this.query = this.search.value.trim().toLowerCase();
      this.invalidateList();
    });
    this.labelInput = el('input', 'search label-filter');
    this.labelInput.type = 'search';
    this.labelInput.placeholder = 'Labels, e.g. site=north';
    this.labelInput.setAttribute('aria-label', 'Show devices with all these labels (key=value, comma separated)');
    this.labelInput.dataset.testid = 'fleet-label-filter';
    this.labelInput.addEventListener('input', () => {
      const parsed = parseLabels(this.labelInput.value);
      // A half-typed pair filters nothing yet; the field says so.
      this.labelInput.classList.toggle('invalid', 'error' in parsed);
      this.labelInput.title = 'error' in parsed ? parsed.error : '';
      this.labelPairs = 'error' in parsed ? [] : parsed.pairs;
      this.invalidateList();
    });
    const manage = el('a', 'manage-link', 'Manage devices');
    manage.href = '#/devices';
    manage.dataset.testid = 'manage-devices';
    const seg = el('div', 'segmented');
    seg.setAttribute('role', 'group');
    seg.setAttribute('aria-label', 'Show');
    for (const f of ['all', 'online', 'offline'] as const) {
      const b = el('button', 'seg', f[0]!.toUpperCase() + f.slice(1));
      b.type = 'button';
      b.dataset.filter = f;
      b.dataset.testid = `fleet-filter-${f}`;
      b.addEventListener('click', () => this.setFilter(f));
      seg.append(b);
      this.filterButtons.set(f, b);
    }
    toolbar.append(title, this.summaryText, el('span', 'spacer'), this.search, this.labelInput, seg, manage);

    const table = el('div', 'fleet-table');
    table.setAttribute('role', 'table');
    const head = el('div', 'fleet-row fleet-head');
    head.setAttribute('role', 'row');
    for (const [cls, text] of [
      ['c-device', 'Device'],
      ['c-type', 'Type'],
      ['c-state', 'State'],
      ['c-seen', 'Last seen'],
      ['c-values', 'Last values'],
      ['c-spark', 'Trend'],
    ] as const) {
      const c = el('div', cls, text);
      c.setAttribute('role', 'columnheader');
      head.append(c);
    }
    this.scroller = el('div', 'fleet-scroll');
    this.body = el('div', 'fleet-body');
    this.body.setAttribute('role', 'rowgroup');
    this.empty = el('div', 'fleet-empty muted');
    this.scroller.append(this.body, this.empty);
    this.scroller.addEventListener('scroll', () => schedule(this.renderTask), { passive: true });
    table.append(head, this.scroller);
    this.root.append(toolbar, table);

    this.setFilter('all');
    this.unsubscribe = this.fleet.on('change', (c) => this.changed(c));
    this.unsubscribeAlarms = this.alarms.on('change', (c) => this.changed({ ids: c.devices, membership: false }));
    window.addEventListener('resize', () => this.mounted && schedule(this.renderTask));
  }

  mount(parent: HTMLElement): void {
    parent.replaceChildren(this.root);
    this.mounted = true;
    this.scroller.scrollTop = this.savedScroll;
    this.sparkColor = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || this.sparkColor;
    this.allDirty = true;
    schedule(this.renderTask);
    // Relative times ("3 s ago") move even when nothing arrives.
    this.clockTimer = window.setInterval(() => {
      this.allDirty = true;
      schedule(this.renderTask);
    }, 1000);
  }

  unmount(): void {
    if (this.mounted) this.savedScroll = this.scroller.scrollTop;
    this.mounted = false;
    window.clearInterval(this.clockTimer);
    this.root.remove();
  }

  destroy(): void {
    this.unmount();
    this.unsubscribe();
    this.unsubscribeAlarms();
  }

  private setFilter(f: Filter): void {
    this.filter = f;
    for (const [k, b] of this.filterButtons) b.setAttribute('aria-pressed', String(k === f));
    this.invalidateList();
  }

  private invalidateList(): void {
    this.listDirty = true;
    this.allDirty = true;
    if (this.mounted) schedule(this.renderTask);
  }

  private changed(c: FleetChange): void {
    for (const id of c.ids) this.dirty.add(id);
    if (c.membership) this.listDirty = true;
    if (!this.mounted || this.updateTimer !== undefined) return;
    // Values are rewritten at most every UPDATE_MS: faster than that, text only flickers and costs paint.
    const wait = Math.max(0, UPDATE_MS - (performance.now() - this.renderedAt));
    this.updateTimer = window.setTimeout(() => {
      this.updateTimer = undefined;
      schedule(this.renderTask);
    }, wait);
  }

  private matches(e: FleetEntry): boolean {
    const s = e.summary;
    if (this.filter === 'online' && !s.online) return false;
    if (this.filter === 'offline' && s.online) return false;
    if (this.labelPairs.length > 0 && !matchesLabels(s.labels, this.labelPairs)) return false;
    if (!this.query) return true;
    const q = this.query;
    return s.id.toLowerCase().includes(q) || (s.type ?? '').toLowerCase().includes(q) || typeName(s.type).toLowerCase().includes(q) || (s.name ?? '').toLowerCase().includes(q);
  }

  private rebuildList(): void {
    const ids: string[] = [];
    for (const [id, e] of this.fleet.entries) if (this.matches(e)) ids.push(id);
    ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.list = ids;
    this.listDirty = false;
    this.body.style.height = `${ids.length * ROW_HEIGHT}px`;
    const total = this.fleet.entries.size;
    const online = this.fleet.online;
    this.summaryText.textContent = `${ids.length === total ? `${total}` : `${ids.length} of ${total}`} ${total === 1 ? 'device' : 'devices'} · ${online} online`;
    for (const [f, b] of this.filterButtons) {
      const n = f === 'all' ? total : f === 'online' ? online : total - online;
      b.textContent = `${f[0]!.toUpperCase()}${f.slice(1)} ${n}`;
    }
    if (ids.length === 0) {
      this.empty.textContent = total === 0 ? 'No devices yet. Devices appear here as soon as they connect.' : 'No device matches the search and filter.';
      this.empty.hidden = false;
    } else this.empty.hidden = true;
  }

  private render(): void {
    if (!this.mounted) return;
    this.renderedAt = performance.now();
    if (this.listDirty) this.rebuildList();
    const list = this.list;
    const viewTop = this.scroller.scrollTop;
    const viewHeight = this.scroller.clientHeight || window.innerHeight;
    const first = Math.max(0, Math.floor(viewTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(list.length - 1, Math.ceil((viewTop + viewHeight) / ROW_HEIGHT) + OVERSCAN);

    // Rows that scrolled out (or whose device left the list) go back to the pool.
    const wanted = new Set<string>();
    for (let i = first; i <= last; i++) wanted.add(list[i]!);
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        this.rows.delete(id);
        row.id = undefined;
        row.el.remove();
        this.pool.push(row);
      }
    }
    const now = this.now();
    for (let i = first; i <= last; i++) {
      const id = list[i]!;
      let row = this.rows.get(id);
      let fresh = false;
      if (!row) {
        row = this.pool.pop() ?? this.createRow();
        row.id = id;
        row.shown = {};
        row.index = -1;
        this.rows.set(id, row);
        this.body.append(row.el);
        fresh = true;
      }
      if (row.index !== i) {
        row.index = i;
        row.el.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      }
      const entry = this.fleet.get(id);
      if (!entry) continue;
      if (fresh || this.dirty.has(id)) this.fill(row, entry, now, true);
      else if (this.allDirty) this.fill(row, entry, now, false);
    }
    this.dirty.clear();
    this.allDirty = false;
  }

  private createRow(): Row {
    const a = el('a', 'fleet-row');
    a.setAttribute('role', 'row');
    a.dataset.testid = 'fleet-row';
    const cDevice = el('div', 'c-device');
    const dot = el('span', 'dot');
    const names = el('div', 'names');
    const name = el('div', 'dev-id');
    const sub = el('div', 'dev-sub muted');
    names.append(name, sub);
    const alarm = alarmBadgeElement('fleet-alarm-badge');
    cDevice.append(dot, names, alarm);
    const type = el('div', 'c-type');
    const state = el('div', 'c-state');
    const stateMain = el('div', 'state-main');
    const stateCode = el('div', 'state-code');
    state.append(stateMain, stateCode);
    const seen = el('div', 'c-seen');
    const values = el('div', 'c-values');
    const cSpark = el('div', 'c-spark');
    const spark = sparkCanvas(SPARK_W, SPARK_H);
    cSpark.append(spark);
    for (const c of [cDevice, type, state, seen, values, cSpark]) c.setAttribute('role', 'cell');
    a.append(cDevice, type, state, seen, values, cSpark);
    return { el: a, id: undefined, index: -1, dot, name, sub, type, state, stateMain, stateCode, seen, values, spark, alarm, shown: {} };
  }

  /** Writes what changed into a row; `full` false updates only the relative time. */
  private fill(row: Row, e: FleetEntry, now: number, full: boolean): void {
    const s = e.summary;
    const sh = row.shown;
    const seen = ago(s.lastSeen, now);
    if (sh.seen !== seen) {
      row.seen.textContent = seen;
      sh.seen = seen;
    }
    if (!full) return;
    if (row.el.dataset.deviceId !== s.id) {
      row.el.dataset.deviceId = s.id;
      row.el.href = `#/device/${encodeURIComponent(s.id)}`;
      row.name.textContent = s.id;
      row.el.title = `Open ${s.id}`;
    }
    const sub = [s.name ?? '', labelsText(s.labels), s.disabled ? 'disabled' : ''].filter(Boolean).join(' · ');
    if (sh.sub !== sub) {
      row.sub.textContent = sub;
      row.sub.hidden = !sub;
      sh.sub = sub;
    }
    const type = typeName(s.type) || '—';
    if (sh.type !== type) {
      row.type.textContent = type;
      sh.type = type;
    }
    const state = stateText(s);
    const stateKey = state.join('\n');
    if (sh.online !== s.online || sh.state !== stateKey) {
      row.el.dataset.online = String(s.online);
      row.dot.className = `dot ${s.online ? 'on' : 'off'}`;
      const [main, code] = state;
      row.stateMain.textContent = main;
      row.stateCode.textContent = code;
      row.stateCode.hidden = !code;
      row.state.title = code ? `${main}: ${code}` : main;
      row.state.className = `c-state ${s.online ? 'ok' : 'off'}`;
      sh.online = s.online;
      sh.state = stateKey;
    }
    const values = valuesText(s);
    if (sh.values !== values) {
      row.values.textContent = values;
      row.values.title = values;
      sh.values = values;
    }
    paintAlarmBadge(row.alarm, this.alarms.badge(s.id), true);
    drawSparkline(row.spark, e.spark, s.online ? this.sparkColor : '#9aa3af');
  }
}

/** The state cell's two lines: what happened, and the error code (on a line of its own, so it is never cut off). */
function stateText(s: DeviceSummary): [string, string] {
  if (s.online) return ['online', ''];
  return [`offline · ${offlineCauseText(s.offlineCause, s.lastSeen)}`, s.offlineDetail ?? ''];
}

function valuesText(s: DeviceSummary): string {
  const last = s.last;
  if (!last) return '—';
  const keys = Object.keys(last)
    .map(Number)
    .filter(Number.isInteger)
    .sort((a, b) => a - b);
  if (keys.length === 0) return '—';
  const parts: string[] = [];
  for (const k of keys.slice(0, MAX_VALUES_SHOWN)) {
    const c = channelInfo(s.type, k);
    parts.push(`${c.name} ${reading(last[String(k)]?.value, c.unit)}`);
  }
  if (keys.length > MAX_VALUES_SHOWN) parts.push(`+${keys.length - MAX_VALUES_SHOWN}`);
  return parts.join(' · ');
}
