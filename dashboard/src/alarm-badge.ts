/**
 * The alarm badge of a fleet row, of the device page and of the top bar: how many alarms are open
 * and the worst one's severity, in that severity's colour; hidden when none is open.
 */
import { badgeText, type AlarmBadge } from './alarms.js';
import './alarms.css';

export function alarmBadgeElement(testid: string, tag: 'span' | 'a' = 'span'): HTMLElement {
  const e = document.createElement(tag);
  e.className = 'alarm-badge';
  e.dataset.testid = testid;
  e.hidden = true;
  return e;
}

/** `short`: "▲ 2" (a fleet row); else "2 alarms · critical". */
export function paintAlarmBadge(e: HTMLElement, b: AlarmBadge | undefined, short: boolean): void {
  if (!b) {
    if (!e.hidden) {
      e.hidden = true;
      e.textContent = '';
      delete e.dataset.severity;
      delete e.dataset.count;
    }
    return;
  }
  const text = short ? `▲ ${b.open}` : badgeText(b);
  if (e.textContent !== text) e.textContent = text;
  e.hidden = false;
  e.dataset.severity = b.severity;
  e.dataset.count = String(b.open);
  e.dataset.active = String(b.active);
  e.title = badgeText(b);
  e.className = `alarm-badge sev-${b.severity}${b.active === 0 ? ' acked' : ''}`;
}
