/** The connection indicator: connected / reconnecting (with a countdown) / offline, and "retry now". */
import type { ConnectionInfo, LiveClient } from './live.js';

const LABELS: Record<ConnectionInfo['state'], string> = {
  connecting: 'Connecting…',
  connected: 'Live',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
  unauthorized: 'Not authorized',
};

export class ConnectionIndicator {
  readonly root: HTMLElement;
  private readonly label: HTMLElement;
  private readonly retry: HTMLButtonElement;
  private info: ConnectionInfo;
  private timer: number | undefined;

  constructor(private readonly live: LiveClient) {
    this.root = document.createElement('div');
    this.root.className = 'conn';
    this.root.dataset.testid = 'connection-state';
    this.root.setAttribute('role', 'status');
    this.root.setAttribute('aria-live', 'polite');
    const dot = document.createElement('span');
    dot.className = 'conn-dot';
    this.label = document.createElement('span');
    this.label.className = 'conn-label';
    this.retry = document.createElement('button');
    this.retry.type = 'button';
    this.retry.className = 'link';
    this.retry.textContent = 'Retry now';
    this.retry.addEventListener('click', () => live.retryNow());
    this.root.append(dot, this.label, this.retry);
    this.info = live.connection;
    live.on('connection', (info) => this.show(info));
    this.show(this.info);
  }

  private show(info: ConnectionInfo): void {
    this.info = info;
    this.root.dataset.state = info.state;
    this.root.title = info.reason ?? '';
    window.clearInterval(this.timer);
    this.paint();
    if (info.retryAt) this.timer = window.setInterval(() => this.paint(), 1000);
  }

  private paint(): void {
    const { state, retryAt } = this.info;
    let text = LABELS[state];
    if ((state === 'reconnecting' || state === 'offline' || state === 'connecting') && retryAt) {
      const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      text += s > 0 ? ` · retry in ${s} s` : ' · retrying…';
    }
    this.label.textContent = text;
    this.retry.hidden = !retryAt || state === 'connected' || state === 'unauthorized';
  }
}
