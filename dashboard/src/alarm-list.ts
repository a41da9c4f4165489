/**
 * The alarm list (`#/alarms?state=…&severity=…&device=…`): every alarm the page knows, newest first,
 * filtered by severity, state and device, updated live from the `alarms` stream; each row
 * (alarm-row.ts) acknowledges or clears its alarm. Rows are kept per alarm and only rewritten when
 * their alarm changed, and put in order without moving those already in place, so a note being
 * typed survives live updates of other rows.
 */
import { AlarmRow } from './alarm-row.js';
import { filterQuery, parseFilter, SEVERITIES, STATE_FILTERS, type AlarmFilter, type AlarmStore, type StateFilter } from './alarms.js';
import { listAlarms } from './api.js';
import type { FleetState } from './fleet-state.js';
import { schedule } from './frame.js';
import type { AlarmSeverity } from './types.js';
import './alarms.css';

/** How many alarms one fetch asks for. */
const FETCH_LIMIT = 500;
/** Rows drawn at most (newest first); the summary says how many more match. */
const MAX_ROWS = 500;

const STATE_LABELS: Record<StateFilter, string> = { open: 'Open', active: 'Active', acknowledged: 'Acknowledged', cleared: 'Cleared', all: 'All' };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}


export class AlarmListView {
  readonly root: HTMLElement;
  private filter: AlarmFilter = parseFilter('');
  private readonly body: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly loadNote: HTMLElement;
  private readonly deviceInput: HTMLInputElement;
  private readonly severityButtons = new Map<string, HTMLButtonElement>();
  private readonly stateButtons = new Map<string, HTMLButtonElement>();
  private readonly rows = new Map<string, AlarmRow>();
  private mounted = false;
  private clockTimer: number | undefined;
  private readonly offs: (() => void)[] = [];
  private readonly renderTask = () => this.render();
  private fetching: AbortController | undefined;

  constructor(
    private readonly store: AlarmStore,
    private readonly fleet: FleetState,
    private readonly now: () => number,
  ) {
    this.root = el('section', 'view alarm-view');
    this.root.setAttribute('aria-label', 'Alarms');
    const toolbar = el('div', 'toolbar');
    this.summary = el('span', 'muted alarm-summary');
    this.summary.dataset.testid = 'alarm-summary';
    this.deviceInput = el('input', 'search');
    this.deviceInput.type = 'search';
    this.deviceInput.placeholder = 'Device';
    this.deviceInput.setAttribute('aria-label', 'Show the alarms of devices whose id contains');
    this.deviceInput.dataset.testid = 'alarm-filter-device';
    this.deviceInput.addEventListener('input', () => this.setFilter({ ...this.filter, device: this.deviceInput.value.trim() }));
    const severity = this.segmented('Severity', ['all', ...SEVERITIES], (v) => (v === 'all' ? 'Any' : v[0]!.toUpperCase() + v.slice(1)), this.severityButtons, (v) =>
      this.setFilter({ ...this.filter, severity: v as AlarmSeverity | 'all' }),
    );
    severity.dataset.testid = 'alarm-filter-severity';
    const state = this.segmented('State', STATE_FILTERS, (v) => STATE_LABELS[v as StateFilter], this.stateButtons, (v) => this.setFilter({ ...this.filter, state: v as StateFilter }));
    state.dataset.testid = 'alarm-filter-state';
    toolbar.append(el('h1', 'view-title', 'Alarms'), this.summary, el('span', 'spacer'), this.deviceInput, severity, state);

    this.loadNote = el('p', 'chart-note history-note');
    this.loadNote.setAttribute('role', 'status');
    this.loadNote.hidden = true;
    const table = el('div', 'alarm-table');
    table.setAttribute('role', 'table');
    const head = el('div', 'alarm-row alarm-head');
    head.setAttribute('role', 'row');
    for (const [cls, text] of [
      ['a-sev', 'Severity'],
      ['a-state', 'State'],
      ['a-device', 'Device'],
      ['a-what', 'Alarm'],
      ['a-raised', 'Raised'],
      ['a-actions', ''],
    ] as const) {
      const c = el('div', cls, text);
      c.setAttribute('role', 'columnheader');
      head.append(c);
    }
    this.body = el('div', 'alarm-body');
    this.body.setAttribute('role', 'rowgroup');
    this.body.dataset.testid = 'alarm-list';
    this.empty = el('div', 'fleet-empty muted');
    this.empty.dataset.testid = 'alarm-empty';
    table.append(head, this.body, this.empty);
    this.root.append(toolbar, this.loadNote, table);
    this.markFilter();
  }

  mount(parent: HTMLElement, query: string): void {
    this.filter = parseFilter(query);
    this.deviceInput.value = this.filter.device;
    this.markFilter();
    parent.replaceChildren(this.root);
    this.mounted = true;
    this.offs.push(
      this.store.on('change', (c) => {
        schedule(this.renderTask);
        if (c.stale) void this.load();
      }),
    );
    this.clockTimer = window.setInterval(() => schedule(this.renderTask), 1000);
    schedule(this.renderTask);
    void this.load();
  }

  unmount(): void {
    this.mounted = false;
    this.fetching?.abort();
    window.clearInterval(this.clockTimer);
    for (const off of this.offs.splice(0)) off();
    this.root.remove();
  }

  /** Fetches what the filter shows from the gateway (the live stream has only the open ones). */
  async load(): Promise<void> {
    this.fetching?.abort();
    const abort = (this.fetching = new AbortController());
    const f = this.filter;
    const known = f.device && this.fleet.get(f.device) ? f.device : undefined;
    try {
      const list = await listAlarms(
        {
          ...(f.state === 'all' ? {} : { state: f.state === 'open' ? ['active', 'acknowledged'] : [f.state] }),
          ...(f.severity === 'all' ? {} : { severity: [f.severity] }),
          ...(known ? { device: known } : {}),
          limit: FETCH_LIMIT,
        },
        abort.signal,
      );
      this.store.upsert(list);
      this.loadNote.hidden = true;
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      const e = err as Error & { code?: string };
      this.loadNote.textContent = `The alarm list could not be loaded${e.code ? ` (${e.code})` : ''}: ${e.message}. Live alarms still show as they change.`;
      this.loadNote.hidden = false;
    }
  }

  private segmented(label: string, values: readonly string[], text: (v: string) => string, buttons: Map<string, HTMLButtonElement>, pick: (v: string) => void): HTMLElement {
    const seg = el('div', 'segmented');
    seg.setAttribute('role', 'group');
    seg.setAttribute('aria-label', label);
    for (const v of values) {
      const b = el('button', 'seg', text(v));
      b.type = 'button';
      b.dataset.value = v;
      b.addEventListener('click', () => pick(v));
      seg.append(b);
      buttons.set(v, b);
    }
    return seg;
  }

  private setFilter(f: AlarmFilter): void {
    const refetch = f.state !== this.filter.state || f.severity !== this.filter.severity;
    this.filter = f;
    this.markFilter();
    const q = filterQuery(f);
    // The filter lives in the address, so a filtered list can be linked to; no hashchange, no new history entry.
    window.history.replaceState(null, '', `#/alarms${q ? `?${q}` : ''}`);
    schedule(this.renderTask);
    if (refetch) void this.load();
  }

  private markFilter(): void {
    for (const [v, b] of this.severityButtons) b.setAttribute('aria-pressed', String(v === this.filter.severity));
    for (const [v, b] of this.stateButtons) b.setAttribute('aria-pressed', String(v === this.filter.state));
  }

  private render(): void {
    if (!this.mounted) return;
    const now = this.now();
    const all = this.store.list(this.filter);
    const list = all.slice(0, MAX_ROWS);
    const wanted = new Set(list.map((a) => a.id));
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    // Put rows in order without moving the ones already in place (a focused note keeps its focus).
    list.forEach((a, i) => {
      let row = this.rows.get(a.id);
      if (!row) this.rows.set(a.id, (row = new AlarmRow(this.store, this.fleet)));
      row.show(a, now);
      const at = this.body.children[i];
      if (at !== row.el) this.body.insertBefore(row.el, at ?? null);
    });
    const open = [...this.store.alarms.values()].filter((a) => a.state !== 'cleared').length;
    this.summary.textContent = `${all.length === list.length ? all.length : `${list.length} of ${all.length}`} shown · ${open} open`;
    this.empty.hidden = list.length > 0;
    this.empty.textContent = this.store.alarms.size === 0 ? 'No alarms. Rules raise them when readings cross their thresholds.' : 'No alarm matches the filter.';
  }
}
