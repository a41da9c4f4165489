/**
 * The device admin view (`#/devices`): add a device (its token shown once, with a copy button),
 * and per device edit name, type and labels, rotate its token (with a grace period for the old
 * one), disable or enable it, delete it (optionally with its history). Every action is one call of
 * the management API (README "Managing devices"); the list comes from the live fleet state, so
 * changes made elsewhere (another operator, another gateway instance) show here too.
 */
import { addDevice, ApiError, deleteDevice, listDeviceTypes, rotateToken, setDisabled, updateDevice } from './api.js';
import type { FleetState } from './fleet-state.js';
import { schedule } from './frame.js';
import { labelsText, parseLabels } from './label-filter.js';
import type { DeviceSummary, DeviceTypeSpec } from './types.js';

/** The gateway's default grace for the old token (README); offered as the form's value. */
const DEFAULT_GRACE_SECONDS = 3600;

type Panel = { id: string; kind: 'edit' | 'rotate' | 'delete' };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(text: string, testid: string, onClick: () => void, className = 'small'): HTMLButtonElement {
  const b = el('button', className, text);
  b.type = 'button';
  b.dataset.testid = testid;
  b.addEventListener('click', onClick);
  return b;
}

function input(testid: string, placeholder: string, value = ''): HTMLInputElement {
  const i = el('input');
  i.dataset.testid = testid;
  i.placeholder = placeholder;
  i.setAttribute('aria-label', placeholder);
  i.value = value;
  return i;
}

/** Labels text as the API's object, or throws with what is wrong. */
function labelsOf(text: string): Record<string, string> {
  const parsed = parseLabels(text);
  if ('error' in parsed) throw new Error(`labels: ${parsed.error}`);
  return Object.fromEntries(parsed.pairs);
}

export class DeviceAdminView {
  readonly root: HTMLElement;
  private readonly message: HTMLElement;
  private readonly tokenBox: HTMLElement;
  private readonly tbody: HTMLElement;
  private readonly typeSelect: HTMLSelectElement;
  private types: DeviceTypeSpec[] = [];
  private panel: Panel | undefined;
  /** The open panel's row, kept across redraws so what is typed there stays. */
  private panelRow: HTMLElement | undefined;
  private readonly unsubscribe: () => void;
  private readonly renderTask = () => this.render();

  constructor(private readonly fleet: FleetState) {
    this.root = el('section', 'view admin-view');
    this.root.setAttribute('aria-label', 'Manage devices');
    const toolbar = el('div', 'toolbar');
    const back = el('a', 'back', '← Fleet');
    back.href = '#/';
    toolbar.append(back, el('h1', 'view-title', 'Manage devices'));

    const form = el('form', 'admin-add');
    form.dataset.testid = 'admin-add-form';
    const id = input('admin-add-id', 'Device id');
    id.required = true;
    this.typeSelect = el('select');
    this.typeSelect.dataset.testid = 'admin-add-type';
    this.typeSelect.setAttribute('aria-label', 'Device type');
    const name = input('admin-add-name', 'Name (optional)');
    const labels = input('admin-add-labels', 'Labels, e.g. site=north, floor=3');
    const add = el('button', 'primary', 'Add device');
    add.type = 'submit';
    add.dataset.testid = 'admin-add';
    form.append(id, this.typeSelect, name, labels, add);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.act(async () => {
        const answer = await addDevice({
          id: id.value.trim(),
          ...(this.typeSelect.value ? { type: this.typeSelect.value } : {}),
          ...(name.value.trim() ? { name: name.value.trim() } : {}),
          ...(labels.value.trim() ? { labels: labelsOf(labels.value) } : {}),
        });
        this.fleet.apply([answer.device], false);
        this.showToken(answer.device.id, answer.token, 'added');
        form.reset();
      });
    });

    this.message = el('div', 'admin-message');
    this.message.setAttribute('role', 'status');
    this.message.dataset.testid = 'admin-message';
    this.message.hidden = true;
    this.tokenBox = el('div', 'token-box');
    this.tokenBox.dataset.testid = 'admin-token-box';
    this.tokenBox.hidden = true;

    const table = el('table', 'admin-table');
    const head = el('tr');
    for (const h of ['Device', 'Name', 'Type', 'Labels', 'State', '']) head.append(el('th', undefined, h));
    this.tbody = el('tbody');
    table.append(el('thead'), this.tbody);
    table.tHead!.append(head);
    this.root.append(toolbar, form, this.message, this.tokenBox, table);
    this.unsubscribe = this.fleet.on('change', (c) => c.membership || c.ids.size > 0 ? schedule(this.renderTask) : undefined);
  }

  mount(parent: HTMLElement): void {
    parent.replaceChildren(this.root);
    void listDeviceTypes().then(
      (types) => {
        this.types = types;
        this.fillTypes(this.typeSelect, '');
        schedule(this.renderTask);
      },
      () => this.fillTypes(this.typeSelect, ''),
    );
    this.render();
  }

  destroy(): void {
    this.unsubscribe();
    this.root.remove();
  }

  private fillTypes(select: HTMLSelectElement, current: string): void {
    const options = [el('option', undefined, '(no type)')];
    options[0]!.value = '';
    for (const t of this.types) {
      const o = el('option', undefined, `${t.name} (${t.type})`);
      o.value = t.type;
      options.push(o);
    }
    select.replaceChildren(...options);
    select.value = current;
  }

  /** Runs one API call: its error shown in words (with the code), the message cleared on success. */
  private async act(run: () => Promise<void>): Promise<void> {
    try {
      await run();
      this.message.hidden = true;
    } catch (err) {
      this.message.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : (err as Error).message;
      this.message.hidden = false;
    }
  }

  /** The one time a token is shown: with a copy button, until the operator closes it. */
  private showToken(id: string, token: string, what: 'added' | 'rotated', oldValidUntil?: number | null): void {
    const text = el('code', 'token', token);
    text.dataset.testid = 'admin-token';
    const copied = el('span', 'muted');
    const copy = button('Copy', 'admin-token-copy', () => {
      navigator.clipboard?.writeText(token).then(
        () => (copied.textContent = 'Copied.'),
        () => {
          // No clipboard (an insecure origin): select it for Ctrl+C instead.
          getSelection()?.selectAllChildren(text);
          copied.textContent = 'Selected: press Ctrl+C.';
        },
      ) ?? (getSelection()?.selectAllChildren(text), (copied.textContent = 'Selected: press Ctrl+C.'));
    });
    const done = button('Done', 'admin-token-done', () => {
      this.tokenBox.hidden = true;
      this.tokenBox.replaceChildren();
    });
    const grace = oldValidUntil ? ` The old token works until ${new Date(oldValidUntil).toLocaleString()}.` : what === 'rotated' ? ' The old token no longer works.' : '';
    const title = el('div', undefined, `Token of ${id} (${what}). It is shown only now: copy it to the device.${grace}`);
    this.tokenBox.replaceChildren(title, text, copy, done, copied);
    this.tokenBox.hidden = false;
  }

  private render(): void {
    const list = [...this.fleet.entries.values()].map((e) => e.summary).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (this.panel && !this.fleet.get(this.panel.id)) this.closePanel();
    const rows: HTMLElement[] = [];
    for (const d of list) {
      rows.push(this.row(d));
      if (this.panel?.id === d.id) rows.push((this.panelRow ??= this.panelFor(d, this.panel)));
    }
    if (rows.length === 0) {
      const empty = el('td', 'muted', 'No devices yet: add one above.');
      empty.colSpan = 6;
      const tr = el('tr');
      tr.append(empty);
      rows.push(tr);
    }
    // The open form's row stays where it is while the rows around it are replaced: moving it would
    // blur the field being typed in (a fleet delta redraws the list), and the typing would go nowhere.
    const panel = this.panelRow;
    const at = panel !== undefined && panel.parentNode === this.tbody ? rows.indexOf(panel) : -1;
    if (panel === undefined || at < 0) {
      this.tbody.replaceChildren(...rows);
      return;
    }
    for (const child of [...this.tbody.children]) if (child !== panel) child.remove();
    panel.before(...rows.slice(0, at));
    panel.after(...rows.slice(at + 1));
  }

  private row(d: DeviceSummary): HTMLElement {
    const tr = el('tr');
    tr.dataset.testid = 'admin-row';
    tr.dataset.deviceId = d.id;
    const state = d.disabled ? 'disabled' : d.online ? 'online' : 'offline';
    const stateCell = el('td', `admin-state ${state}`, state);
    stateCell.dataset.testid = 'admin-state';
    const actions = el('td', 'admin-actions');
    actions.append(
      button('Edit', 'admin-edit', () => this.openPanel({ id: d.id, kind: 'edit' })),
      button('Rotate token', 'admin-rotate', () => this.openPanel({ id: d.id, kind: 'rotate' })),
      button(d.disabled ? 'Enable' : 'Disable', d.disabled ? 'admin-enable' : 'admin-disable', () =>
        this.act(async () => this.fleet.apply([await setDisabled(d.id, !d.disabled)], false)),
      ),
      button('Delete', 'admin-delete', () => this.openPanel({ id: d.id, kind: 'delete' }), 'small danger'),
    );
    tr.append(el('td', 'mono', d.id), el('td', undefined, d.name ?? ''), el('td', undefined, d.type ?? ''), el('td', 'mono', labelsText(d.labels)), stateCell, actions);
    return tr;
  }

  private openPanel(p: Panel): void {
    this.panel = p;
    this.panelRow = undefined;
    this.render();
  }

  private closePanel(): void {
    this.panel = undefined;
    this.panelRow = undefined;
    schedule(this.renderTask);
  }

  /** The inline form under a device's row: edit, rotate or delete. */
  private panelFor(d: DeviceSummary, p: Panel): HTMLElement {
    const tr = el('tr', 'admin-panel');
    tr.dataset.testid = `admin-panel-${p.kind}`;
    const td = el('td');
    td.colSpan = 6;
    tr.append(td);
    const cancel = button('Cancel', 'admin-cancel', () => this.closePanel());
    if (p.kind === 'edit') {
      const name = input('admin-edit-name', 'Name', d.name ?? '');
      const type = el('select');
      type.dataset.testid = 'admin-edit-type';
      type.setAttribute('aria-label', 'Device type');
      this.fillTypes(type, d.type ?? '');
      if (d.type && type.value !== d.type) {
        // A type the list does not have (yet): keep it selectable as it is.
        const o = el('option', undefined, d.type);
        o.value = d.type;
        type.append(o);
        type.value = d.type;
      }
      const labels = input('admin-edit-labels', 'Labels, e.g. site=north', labelsText(d.labels));
      const save = button('Save', 'admin-save', () =>
        this.act(async () => {
          this.fleet.apply([await updateDevice(d.id, { name: name.value.trim() || null, type: type.value || null, labels: labelsOf(labels.value) })], false);
          this.closePanel();
        }),
      'small primary');
      td.append(name, type, labels, save, cancel);
    } else if (p.kind === 'rotate') {
      const grace = input('admin-grace', 'Grace for the old token (seconds)', String(DEFAULT_GRACE_SECONDS));
      grace.type = 'number';
      grace.min = '0';
      const go = button('Rotate', 'admin-rotate-confirm', () =>
        this.act(async () => {
          const answer = await rotateToken(d.id, Number(grace.value));
          this.fleet.apply([answer.device], false);
          this.closePanel();
          this.showToken(d.id, answer.token, 'rotated', answer.previousTokenValidUntil);
        }),
      'small primary');
      td.append(el('span', undefined, `New token for ${d.id}; the old one keeps working for `), grace, el('span', undefined, ' s. '), go, cancel);
    } else {
      const history = el('input');
      history.type = 'checkbox';
      history.dataset.testid = 'admin-delete-history';
      const label = el('label');
      label.append(history, document.createTextNode(' also delete its stored history'));
      const go = button(`Delete ${d.id}`, 'admin-delete-confirm', () =>
        this.act(async () => {
          await deleteDevice(d.id, history.checked);
          this.fleet.remove([d.id]);
          this.closePanel();
        }),
      'small danger');
      td.append(el('span', undefined, `Delete ${d.id}? Its connection is closed and its token stops working. `), label, go, cancel);
    }
    return tr;
  }
}
