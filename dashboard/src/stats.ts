/**
 * The gateway panel, always visible: devices online/known, frames/s, readings/s, live messages
 * dropped for slow dashboards, errors by code, dashboard clients and storage status, from the
 * `stats` stream (once a second). Each figure is rewritten only when its text changes.
 */
import { compact } from './format.js';
import type { GatewayStats } from './types.js';

interface Figure {
  value: HTMLElement;
  box: HTMLElement;
}

const FIGURES = [
  ['devices', 'Devices online'],
  ['frames', 'Frames/s'],
  ['readings', 'Readings/s'],
  ['dropped', 'Live dropped'],
  ['errors', 'Errors'],
  ['clients', 'Dashboards'],
  ['storage', 'Storage'],
] as const;

type Key = (typeof FIGURES)[number][0];

export class StatsPanel {
  readonly root: HTMLElement;
  private readonly figures = new Map<Key, Figure>();

  constructor() {
    this.root = document.createElement('dl');
    this.root.className = 'stats';
    this.root.dataset.testid = 'gateway-stats';
    this.root.setAttribute('aria-label', 'Gateway');
    for (const [key, label] of FIGURES) {
      const box = document.createElement('div');
      box.className = `stat stat-${key}`;
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = '–';
      dd.dataset.testid = `stat-${key}`;
      box.append(dt, dd);
      this.root.append(box);
      this.figures.set(key, { value: dd, box });
    }
  }

  update(s: GatewayStats): void {
    this.set('devices', `${compact(s.devicesOnline)} / ${compact(s.devicesKnown)}`);
    this.set('frames', rate(s.framesPerSec));
    this.set('readings', rate(s.readingsPerSec));
    this.set('dropped', compact(s.liveDropped ?? 0), (s.liveDropped ?? 0) > 0 ? 'warn' : '', 'Live messages the gateway dropped for dashboards that could not keep up');
    const byCode = Object.entries(s.errorsByCode ?? {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const total = s.errors ?? byCode.reduce((a, [, n]) => a + n, 0);
    const top = byCode.slice(0, 2).map(([code, n]) => `${code} ${compact(n)}`).join(', ');
    this.set('errors', total > 0 ? `${compact(total)}${top ? ` · ${top}` : ''}` : '0', total > 0 ? 'warn' : '', byCode.length ? byCode.map(([c, n]) => `${c}: ${n}`).join('\n') : 'No device errors');
    this.set('clients', compact(s.liveClients));
    const st = s.storage;
    const status = st?.status ?? 'unknown';
    // The detail says why (e.g. frames refused with STORAGE_FULL); it changes every second, so it goes in the tooltip.
    this.set('storage', st ? `${st.kind ?? '?'} · ${status}` : '–', !st || /^(ok|up|ready|healthy)$/i.test(status) ? '' : 'bad', st ? `Storage ${st.kind ?? ''}: ${status}${st.detail ? ` — ${st.detail}` : ''}` : '');
  }

  private set(key: Key, text: string, tone = '', title?: string): void {
    const f = this.figures.get(key)!;
    if (f.value.textContent !== text) f.value.textContent = text;
    const cls = `stat stat-${key}${tone ? ` ${tone}` : ''}`;
    if (f.box.className !== cls) f.box.className = cls;
    if (title !== undefined && f.box.title !== title) f.box.title = title;
  }
}

function rate(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n < 100 ? String(Math.round(n * 10) / 10) : compact(Math.round(n));
}
