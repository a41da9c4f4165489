/**
 * One row of the alarm list: severity, state, device, what and when, the transitions with who and
 * why, and the operator's actions: acknowledge (with a note) an active alarm, clear an open one by
 * hand. An action answers the alarm as it is now, which goes into the store; an action that no
 * longer applies (another operator or the rule got there first) closes its form.
 */
import { alarmAction, ApiError } from './api.js';
import { lastTransition, type AlarmStore } from './alarms.js';
import { channelInfo } from './channels.js';
import type { FleetState } from './fleet-state.js';
import { ago, clock } from './format.js';
import type { Alarm } from './types.js';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class AlarmRow {
  readonly el: HTMLElement;
  /** The alarm object last drawn (the store replaces it on every change). */
  private shown: Alarm | undefined;
  private readonly severity: HTMLElement;
  private readonly state: HTMLElement;
  private readonly device: HTMLAnchorElement;
  private readonly rule: HTMLElement;
  private readonly message: HTMLElement;
  private readonly raised: HTMLElement;
  private readonly history: HTMLElement;
  private readonly ack: HTMLButtonElement;
  private readonly clear: HTMLButtonElement;
  private readonly form: HTMLFormElement;
  private readonly note: HTMLTextAreaElement;
  private readonly submit: HTMLButtonElement;
  private readonly error: HTMLElement;
  private action: 'acknowledge' | 'clear' | undefined;

  constructor(
    private readonly store: AlarmStore,
    private readonly fleet: FleetState,
  ) {
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

    this.el = r;
    this.severity = severity;
    this.state = state;
    this.device = device;
    this.rule = rule;
    this.message = message;
    this.raised = raised;
    this.history = history;
    this.ack = ack;
    this.clear = clear;
    this.form = form;
    this.note = note;
    this.submit = submit;
    this.error = error;
    ack.addEventListener('click', () => this.openAction('acknowledge'));
    clear.addEventListener('click', () => this.openAction('clear'));
    cancel.addEventListener('click', () => this.closeAction());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.act();
    });
  }

  /** Draws `a` (rewriting the row only when the alarm changed) and its age at `now`. */
  show(a: Alarm, now: number): void {
    if (this.shown !== a) this.fill(a);
    const raised = `${clock(a.raisedAt)} · ${ago(a.raisedAt, now)}`;
    if (this.raised.textContent !== raised) this.raised.textContent = raised;
  }

  private fill(a: Alarm): void {
    this.shown = a;
    const r = this.el;
    r.dataset.alarmId = a.id;
    r.dataset.state = a.state;
    r.dataset.severity = a.severity;
    r.dataset.deviceId = a.deviceId;
    this.severity.replaceChildren(Object.assign(el('span', `sev-pill sev-${a.severity}`, a.severity), { title: `severity: ${a.severity}` }));
    this.state.textContent = a.state;
    this.state.className = `a-state state-${a.state}`;
    this.device.textContent = a.deviceId;
    this.device.href = `#/device/${encodeURIComponent(a.deviceId)}`;
    this.rule.textContent = a.ruleName;
    const type = this.fleet.get(a.deviceId)?.summary.type ?? null;
    const value = a.channel !== null && a.value !== null ? ` (${channelInfo(type, a.channel).name} ${typeof a.value === 'boolean' ? (a.value ? 'on' : 'off') : a.value})` : '';
    this.message.textContent = a.message || `${a.ruleName}${value}`;
    this.history.textContent = (a.transitions ?? [])
      .map((t) => `${t.state} ${clock(t.at)}${t.state === 'active' ? '' : ` by ${t.by}`}${t.note ? `: “${t.note}”` : ''}`)
      .join(' → ');
    const last = lastTransition(a);
    this.history.title = last ? `last change ${new Date(last.at).toLocaleString()}` : '';
    this.ack.hidden = a.state !== 'active';
    this.clear.hidden = a.state === 'cleared';
    // An action that no longer applies (another operator, or the rule, got there first) closes.
    if (this.action === 'acknowledge' && a.state !== 'active') this.closeAction();
    if (this.action === 'clear' && a.state === 'cleared') this.closeAction();
  }

  private openAction(action: 'acknowledge' | 'clear'): void {
    this.action = action;
    this.form.hidden = false;
    this.form.dataset.action = action;
    this.submit.textContent = action === 'acknowledge' ? 'Acknowledge' : 'Clear alarm';
    this.submit.disabled = false;
    this.error.hidden = true;
    this.note.focus();
  }

  private closeAction(): void {
    this.action = undefined;
    this.form.hidden = true;
    this.note.value = '';
    this.error.hidden = true;
  }

  private async act(): Promise<void> {
    const a = this.shown;
    const action = this.action;
    if (!a || !action) return;
    this.submit.disabled = true;
    this.error.hidden = true;
    try {
      const updated = await alarmAction(a.id, action, this.note.value.trim() || undefined);
      this.closeAction();
      this.store.upsert([updated]);
    } catch (err) {
      const e = err as Error;
      this.error.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : e.message;
      this.error.hidden = false;
    } finally {
      this.submit.disabled = false;
    }
  }
}
