/**
 * The device page's command console and its recent commands. The console checks the arguments are
 * JSON, and fit the schema of a command the device's type lists (the gateway's own check, run
 * here first so the operator sees what is wrong while typing), before sending; each command shows its lifecycle (queued → sent → delivered → acked, or
 * failed / expired / timed_out) with times, updated live from the `commands` stream.
 */
import { checkArgs } from '../../devices/types/args.js';
import { ApiError, listCommands, sendCommand } from './api.js';
import { clockMs, duration } from './format.js';
import { FINAL_COMMAND_STATES, type CommandRecord, type CommandSpec } from './types.js';

const MAX_SHOWN = 25;
const DEFAULT_TTL_S = 300;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

let formSeq = 0;

export class CommandPanel {
  readonly root: HTMLElement;
  private readonly records = new Map<string, CommandRecord>();
  private readonly items = new Map<string, HTMLElement>();
  private readonly list: HTMLOListElement;
  private readonly emptyNote: HTMLElement;
  private readonly nameInput: HTMLInputElement;
  private readonly argsInput: HTMLTextAreaElement;
  private readonly argsNote: HTMLElement;
  private readonly ttlInput: HTMLInputElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly alert: HTMLElement;
  private readonly chips: HTMLElement;
  private readonly datalist: HTMLDataListElement;
  /** Names of the commands offered now, so the same offer is not rebuilt on every state update. */
  private offered = '';
  private suggestions: readonly CommandSpec[] = [];
  private sending = false;

  constructor(private readonly deviceId: string) {
    const n = ++formSeq;
    this.root = el('section', 'card commands');
    this.root.setAttribute('aria-label', 'Commands');
    const h = el('h2', 'card-title', 'Commands');

    const form = el('form', 'command-form');
    form.dataset.testid = 'command-form';
    form.noValidate = true;

    const nameLabel = el('div', 'field');
    const nameHead = el('div', 'label-row');
    const nameText = el('label', 'label', 'Command');
    nameHead.append(nameText);
    nameLabel.append(nameHead);
    this.nameInput = el('input');
    this.nameInput.name = 'name';
    this.nameInput.required = true;
    this.nameInput.autocomplete = 'off';
    this.nameInput.spellcheck = false;
    // The device's own first command once its type is known (offer): a fixed example would name a
    // command its type may refuse.
    this.nameInput.placeholder = 'command name';
    this.nameInput.dataset.testid = 'command-name';
    this.nameInput.id = `command-name-${n}`;
    nameText.htmlFor = this.nameInput.id;
    const listId = `command-names-${n}`;
    this.nameInput.setAttribute('list', listId);
    this.datalist = el('datalist');
    this.datalist.id = listId;
    nameLabel.append(this.nameInput, this.datalist);

    const ttlLabel = el('label', 'field ttl');
    ttlLabel.append(el('span', 'label', 'TTL (s)'));
    this.ttlInput = el('input');
    this.ttlInput.type = 'number';
    this.ttlInput.min = '1';
    this.ttlInput.max = '604800';
    this.ttlInput.step = '1';
    this.ttlInput.value = String(DEFAULT_TTL_S);
    this.ttlInput.title = 'How long the command may wait for an offline device before it expires';
    this.ttlInput.dataset.testid = 'command-ttl';
    ttlLabel.append(this.ttlInput);

    const argsLabel = el('label', 'field args');
    argsLabel.append(el('span', 'label', 'Arguments (JSON)'));
    this.argsInput = el('textarea');
    this.argsInput.rows = 2;
    this.argsInput.spellcheck = false;
    this.argsInput.placeholder = '(empty = null)';
    this.argsInput.dataset.testid = 'command-args';
    this.argsNote = el('div', 'field-note');
    this.argsNote.dataset.testid = 'command-args-note';
    this.argsNote.setAttribute('aria-live', 'polite');
    argsLabel.append(this.argsInput);

    this.chips = el('div', 'chips');
    this.chips.setAttribute('aria-label', 'Suggestions');
    this.chips.dataset.testid = 'command-chips';

    this.sendButton = el('button', 'primary', 'Send command');
    this.sendButton.type = 'submit';
    this.sendButton.dataset.testid = 'command-send';
    this.alert = el('div', 'alert');
    this.alert.hidden = true;
    this.alert.setAttribute('role', 'alert');
    this.alert.dataset.testid = 'command-error';

    nameHead.append(this.chips);
    const row = el('div', 'form-row');
    row.append(nameLabel, ttlLabel);
    const actions = el('div', 'form-actions');
    actions.append(this.argsNote, this.sendButton);
    form.append(row, argsLabel, actions, this.alert);

    this.nameInput.addEventListener('input', () => {
      const s = this.suggestions.find((x) => x.name === this.nameInput.value);
      if (s && this.argsInput.value.trim() === '') this.argsInput.value = JSON.stringify(s.example);
      this.validate();
    });
    this.argsInput.addEventListener('input', () => this.validate());
    this.ttlInput.addEventListener('input', () => this.validate());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });

    const recent = el('h3', 'subtitle', 'Recent');
    this.list = el('ol', 'command-list');
    this.list.dataset.testid = 'command-list';
    this.emptyNote = el('p', 'muted small', 'No commands for this device yet.');
    this.root.append(h, form, recent, this.emptyNote, this.list);
    this.validate();
  }

  /** Loads the device's recent commands (on open, and after the live stream missed some). */
  async load(): Promise<void> {
    try {
      for (const c of await listCommands(this.deviceId, MAX_SHOWN)) this.upsert(c);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      console.warn('could not load commands', err);
    }
  }

  /** A lifecycle transition from the live stream (any device's; others are ignored). */
  update(c: CommandRecord): void {
    if (c.deviceId === this.deviceId) this.upsert(c);
  }

  private parseArgs(): { ok: true; value: unknown } | { ok: false; message: string } {
    const text = this.argsInput.value.trim();
    if (text === '') return { ok: true, value: null };
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  private ttlMs(): number | undefined {
    const raw = this.ttlInput.value.trim();
    if (raw === '') return undefined;
    const s = Number(raw);
    return Number.isInteger(s) && s >= 1 && s <= 604_800 ? s * 1000 : NaN;
  }

  /**
   * Offers the commands the device's type accepts (the types file, GET /api/device-types), each with arguments
   * the device accepts as they are; a device of no known type gets no suggestions.
   */
  offer(commands: readonly CommandSpec[]): void {
    // The whole list: a types file reload may change a hint or an example, not only the names.
    const key = JSON.stringify(commands);
    if (key === this.offered) return;
    this.offered = key;
    this.suggestions = commands;
    const first = commands[0];
    this.nameInput.placeholder = first?.name ?? 'command name';
    this.argsInput.placeholder = first && first.example !== null ? `${JSON.stringify(first.example)}   (empty = null)` : '(empty = null)';
    this.chips.replaceChildren();
    this.datalist.replaceChildren();
    for (const c of commands) {
      const args = JSON.stringify(c.example);
      const b = el('button', 'chip', c.name);
      b.type = 'button';
      b.title = c.hint;
      b.dataset.testid = 'command-chip';
      b.addEventListener('click', () => {
        this.nameInput.value = c.name;
        this.argsInput.value = args;
        this.validate();
        this.argsInput.focus();
      });
      this.chips.append(b);
      const o = el('option');
      o.value = c.name;
      o.label = c.hint;
      this.datalist.append(o);
    }
    // The schema of what is typed may have changed with the types.
    this.validate();
  }

  private validate(): boolean {
    const args = this.parseArgs();
    const ttl = this.ttlMs();
    const name = this.nameInput.value.trim();
    this.ttlInput.classList.toggle('invalid', Number.isNaN(ttl));
    // A command the type lists: its schema says what fits (a name it does not list is for the gateway to answer).
    const spec = this.suggestions.find((c) => c.name === name);
    const misfit = args.ok && spec ? checkArgs(spec.schema, args.value) : undefined;
    if (!args.ok) {
      this.argsNote.textContent = `Not valid JSON: ${args.message}`;
      this.argsNote.className = 'field-note error';
    } else if (misfit !== undefined) {
      this.argsNote.textContent = `Does not fit ${name}: ${misfit}.`;
      this.argsNote.className = 'field-note error';
    } else if (Number.isNaN(ttl)) {
      this.argsNote.textContent = 'TTL must be a whole number of seconds from 1 to 604800 (7 days).';
      this.argsNote.className = 'field-note error';
    } else {
      this.argsNote.textContent = this.argsInput.value.trim() === '' ? 'No arguments: the device gets null.' : 'Valid JSON.';
      this.argsNote.className = 'field-note muted';
    }
    this.argsInput.classList.toggle('invalid', !args.ok || misfit !== undefined);
    this.argsInput.setAttribute('aria-invalid', String(!args.ok || misfit !== undefined));
    const ok = args.ok && misfit === undefined && !Number.isNaN(ttl) && name !== '';
    this.sendButton.disabled = !ok || this.sending;
    return ok;
  }

  private async submit(): Promise<void> {
    if (!this.validate() || this.sending) return;
    const args = this.parseArgs();
    if (!args.ok) return;
    const ttlMs = this.ttlMs();
    this.sending = true;
    this.sendButton.disabled = true;
    this.sendButton.textContent = 'Sending…';
    this.alert.hidden = true;
    try {
      const body: { name: string; args: unknown; ttlMs?: number } = { name: this.nameInput.value.trim(), args: args.value };
      if (ttlMs !== undefined) body.ttlMs = ttlMs;
      this.upsert(await sendCommand(this.deviceId, body));
    } catch (err) {
      this.showError(err);
    } finally {
      this.sending = false;
      this.sendButton.textContent = 'Send command';
      this.validate();
    }
  }

  private showError(err: unknown): void {
    this.alert.replaceChildren();
    if (err instanceof ApiError) {
      const code = el('code', 'err-code', err.code);
      const status = err.status ? ` (HTTP ${err.status})` : '';
      this.alert.append(el('strong', undefined, 'The gateway refused the command'), document.createTextNode(status), el('br'), code, document.createTextNode(` ${err.message}`));
    } else {
      this.alert.append(el('strong', undefined, 'Could not send the command: '), document.createTextNode((err as Error)?.message ?? String(err)));
    }
    this.alert.hidden = false;
  }

  private upsert(c: CommandRecord): void {
    const old = this.records.get(c.id);
    // Live transitions and GET answers can cross: keep whichever has seen more of the lifecycle.
    if (old && (old.history?.length ?? 0) > (c.history?.length ?? 0)) return;
    this.records.set(c.id, c);
    let item = this.items.get(c.id);
    if (!item) {
      item = el('li', 'command');
      item.dataset.testid = 'command';
      item.dataset.commandId = c.id;
      this.items.set(c.id, item);
      this.insertSorted(item, c);
    }
    this.fillItem(item, c);
    this.emptyNote.hidden = this.records.size > 0;
    this.trim();
  }

  private insertSorted(item: HTMLElement, c: CommandRecord): void {
    // Newest first.
    for (const child of this.list.children) {
      const other = this.records.get((child as HTMLElement).dataset.commandId ?? '');
      if (other && other.createdAt < c.createdAt) {
        this.list.insertBefore(item, child);
        return;
      }
    }
    this.list.append(item);
  }

  private trim(): void {
    while (this.list.children.length > MAX_SHOWN) {
      const last = this.list.lastElementChild as HTMLElement;
      const id = last.dataset.commandId ?? '';
      this.records.delete(id);
      this.items.delete(id);
      last.remove();
    }
  }

  private fillItem(item: HTMLElement, c: CommandRecord): void {
    item.dataset.state = c.state;
    const head = el('div', 'command-head');
    head.append(el('span', 'command-name', c.name));
    const argsText = c.args === null || c.args === undefined ? '' : JSON.stringify(c.args);
    if (argsText) {
      const a = el('code', 'command-args', argsText.length > 80 ? `${argsText.slice(0, 79)}…` : argsText);
      a.title = argsText;
      head.append(a);
    }
    const badge = el('span', `badge state-${c.state}`, c.state.replace('_', ' '));
    badge.dataset.testid = 'command-state';
    badge.dataset.state = c.state;
    head.append(el('span', 'spacer'), badge);

    const steps = el('ol', 'timeline');
    const t0 = c.createdAt;
    for (const h of c.history ?? []) {
      const li = el('li', `step state-${h.state}`);
      li.append(el('span', 'step-name', h.state.replace('_', ' ')));
      const t = el('time', 'step-time', h.at === t0 ? clockMs(h.at) : `+${duration(h.at - t0)}`);
      t.dateTime = new Date(h.at).toISOString();
      t.title = `${new Date(h.at).toLocaleString()}${h.note ? ` — ${h.note}` : ''}`;
      li.append(t);
      steps.append(li);
    }
    const parts: Node[] = [head, steps];
    if (c.state === 'acked' && c.result !== undefined) {
      parts.push(el('div', 'command-result', `result: ${JSON.stringify(c.result)}`));
    }
    if (c.error) parts.push(el('div', 'command-error-text', c.error));
    if (!FINAL_COMMAND_STATES.has(c.state)) {
      parts.push(el('div', 'muted small', `expires ${clockMs(c.expiresAt).slice(0, 8)} if not delivered · result due within ${duration(c.timeoutMs)} of sending`));
    }
    item.replaceChildren(...parts);
  }
}
