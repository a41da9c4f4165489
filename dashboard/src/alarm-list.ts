/**
 * The alarm list (`#/alarms?state=…&severity=…&device=…`): every alarm the page knows, newest first,
 * filtered by severity, state and device, updated live from the `alarms` stream. An open alarm can be
 * acknowledged (with a note) or cleared by hand; each row shows its transitions with who and why.
 * Rows are kept per alarm and only rewritten when their alarm changed, so a note being typed
 * survives live updates of other rows.
 */
import { alarmAction, ApiError, listAlarms } from './api.js';
import { filterQuery, lastTransition, parseFilter, SEVERITIES, STATE_FILTERS, type AlarmFilter, type AlarmStore, type StateFilter } from './alarms.js';
import { channelInfo } from './channels.js';
import type { FleetState } from './fleet-state.js';
import { ago, clock } from './format.js';
import { schedule } from './frame.js';
import type { Alarm, AlarmSeverity } from './types.js';
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

interface Row {
  el: HTMLElement;
  /** The alarm object last drawn (the store replaces it on every change). */
  shown: Alarm | undefined;
  severity: HTMLElement;
  state: HTMLElement;
  device: HTMLAnchorElement;
  rule: HTMLElement;
  message: HTMLElement;
  raised: HTMLElement;
  history: HTMLElement;
  ack: HTMLButtonElement;
  clear: HTMLButtonElement;
  form: HTMLFormElement;
  note: HTMLTextAreaElement;
  submit: HTMLButtonElement;
  error: HTMLElement;
  action: 'acknowledge' | 'clear' | undefined;
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
  private readonly rows = new Map<string, Row>();
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
      if (!row) this.rows.set(a.id, (row = this.createRow()));
      if (row.shown !== a) this.fill(row, a);
      row.raised.textContent = `${clock(a.raisedAt)} · ${ago(a.raisedAt, now)}`;
      const at = this.body.children[i];
      if (at !== row.el) this.body.insertBefore(row.el, at ?? null);
    });
    const open = [...this.store.alarms.values()].filter((a) => a.state !== 'cleared').length;
    this.summary.textContent = `${all.length === list.length ? all.length : `${list.length} of ${all.length}`} shown · ${open} open`;
    this.empty.hidden = list.length > 0;
    this.empty.textContent = this.store.alarms.size === 0 ? 'No alarms. Rules raise them when readings cross their thresholds.' : 'No alarm matches the filter.';
  }

  private createRow(): Row {
    const r = el('div', 'alarm-row');
    r.setAttribute('role', 'row');
    r.dataset.testid = 'alarm-row';
    const severity = el('div', 'a-sev');
    const state = el('div', 'a-state');
    state.dataset.testid = 'alarm-state';
    const cDevice = el('div', 'a-device');
    const device = el('a');
    cDevice.append(device);
    const what = el('div', 'a-what');
    const rule = el('div', 'alarm-rule');
    const message = el('div', 'alarm-message');
    message.dataset.testid = 'alarm-message';
    const history = el('div', 'alarm-history muted');
    history.dataset.testid = 'alarm-history';
    what.append(rule, message, history);
    const raised = el('div', 'a-raised');
    const actions = el('div', 'a-actions');
    const ack = el('button', 'small-button', 'Acknowledge');
    ack.type = 'button';
    ack.dataset.testid = 'alarm-ack';
    const clear = el('button', 'small-button', 'Clear');
    clear.type = 'button';
    clear.dataset.testid = 'alarm-clear';
    actions.append(ack, clear);

    const form = el('form', 'alarm-action');
    form.dataset.testid = 'alarm-action-form';
    form.hidden = true;
    const note = el('textarea');
    note.rows = 2;
    note.maxLength = 1000;
    note.placeholder = 'Note (optional): what you are doing about it';
    note.dataset.testid = 'alarm-note';
    note.setAttribute('aria-label', 'Note');
    const submit = el('button', 'primary');
    submit.type = 'submit';
    submit.dataset.testid = 'alarm-action-submit';
    const cancel = el('button', 'link', 'Cancel');
    cancel.type = 'button';
    const error = el('div', 'alarm-error');
    error.dataset.testid = 'alarm-action-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const buttons = el('div', 'alarm-action-buttons');
    buttons.append(submit, cancel);
    form.append(note, buttons, error);
    r.append(severity, state, cDevice, what, raised, actions, form);

    const row: Row = { el: r, shown: undefined, severity, state, device, rule, message, raised, history, ack, clear, form, note, submit, error, action: undefined };
    ack.addEventListener('click', () => this.openAction(row, 'acknowledge'));
    clear.addEventListener('click', () => this.openAction(row, 'clear'));
    cancel.addEventListener('click', () => this.closeAction(row));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.act(row);
    });
    return row;
  }

  private fill(row: Row, a: Alarm): void {
    row.shown = a;
    const r = row.el;
    r.dataset.alarmId = a.id;
    r.dataset.state = a.state;
    r.dataset.severity = a.severity;
    r.dataset.deviceId = a.deviceId;
    row.severity.replaceChildren(Object.assign(el('span', `sev-pill sev-${a.severity}`, a.severity), { title: `severity: ${a.severity}` }));
    row.state.textContent = a.state;
    row.state.className = `a-state state-${a.state}`;
    row.device.textContent = a.deviceId;
    row.device.href = `#/device/${encodeURIComponent(a.deviceId)}`;
    row.rule.textContent = a.ruleName;
    const type = this.fleet.get(a.deviceId)?.summary.type ?? null;
    const value = a.channel !== null && a.value !== null ? ` (${channelInfo(type, a.channel).name} ${typeof a.value === 'boolean' ? (a.value ? 'on' : 'off') : a.value})` : '';
    row.message.textContent = a.message || `${a.ruleName}${value}`;
    row.history.textContent = (a.transitions ?? [])
      .map((t) => `${t.state} ${clock(t.at)}${t.state === 'active' ? '' : ` by ${t.by}`}${t.note ? `: “${t.note}”` : ''}`)
      .join(' → ');
    const last = lastTransition(a);
    row.history.title = last ? `last change ${new Date(last.at).toLocaleString()}` : '';
    row.ack.hidden = a.state !== 'active';
    row.clear.hidden = a.state === 'cleared';
    // An action that no longer applies (another operator, or the rule, got there first) closes.
    if (row.action === 'acknowledge' && a.state !== 'active') this.closeAction(row);
    if (row.action === 'clear' && a.state === 'cleared') this.closeAction(row);
  }

  private openAction(row: Row, action: 'acknowledge' | 'clear'): void {
    row.action = action;
    row.form.hidden = false;
    row.form.dataset.action = action;
    row.submit.textContent = action === 'acknowledge' ? 'Acknowledge' : 'Clear alarm';
    row.submit.disabled = false;
    row.error.hidden = true;
    row.note.focus();
  }

  private closeAction(row: Row): void {
    row.action = undefined;
    row.form.hidden = true;
    row.note.value = '';
    row.error.hidden = true;
  }

  private async act(row: Row): Promise<void> {
    const a = row.shown;
    const action = row.action;
    if (!a || !action) return;
    row.submit.disabled = true;
    row.error.hidden = true;
    try {
      const updated = await alarmAction(a.id, action, row.note.value.trim() || undefined);
      this.closeAction(row);
      this.store.upsert([updated]);
    } catch (err) {
      const e = err as Error;
      row.error.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : e.message;
      row.error.hidden = false;
    } finally {
      row.submit.disabled = false;
    }
  }
}
