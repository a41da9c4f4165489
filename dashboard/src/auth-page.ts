/**
 * The full-page message when this browser is not logged in: why (never logged in, session ended,
 * the link's code or token refused, logged out), and how to get in: a new login link, or the
 * operator token pasted here (exchanged for a session cookie, not kept by the page).
 */
import { logInWithToken } from './login.js';

export type AuthProblem = 'missing' | 'ended' | 'refused' | 'logged-out';

const TITLES: Record<AuthProblem, string> = {
  missing: 'Log in to this dashboard',
  ended: 'Your login session has ended',
  refused: 'The gateway refused this login link',
  'logged-out': 'You are logged out',
};

const LEADS: Record<AuthProblem, string> = {
  missing: 'This browser has no login session with the gateway, so the page cannot read the fleet or send commands.',
  ended: 'Sessions end after a while unused, at logout, after 7 days, and when the gateway\'s operator token changes (a gateway started without --operator-token makes a new one each start).',
  refused: 'Login links work once, within 2 minutes of being made, and only with the gateway that made them. An old link with ?token= works only with the current operator token.',
  'logged-out': 'The session of this browser was ended. Log in again with a new link.',
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function lockIcon(): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '32');
  svg.setAttribute('height', '32');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('auth-icon');
  const body = document.createElementNS(ns, 'rect');
  for (const [k, v] of Object.entries({ x: '4', y: '10', width: '16', height: '11', rx: '2', fill: 'currentColor' })) body.setAttribute(k, v);
  const shackle = document.createElementNS(ns, 'path');
  for (const [k, v] of Object.entries({ d: 'M8 10V7a4 4 0 0 1 8 0v3', fill: 'none', stroke: 'currentColor', 'stroke-width': '2' })) shackle.setAttribute(k, v);
  svg.append(shackle, body);
  return svg;
}

export function showAuthPage(problem: AuthProblem, detail?: string): void {
  const origin = window.location.origin;
  const page = el('main', 'auth-page');
  const card = el('section', 'auth-card');
  card.dataset.testid = 'auth-error';
  card.dataset.problem = problem;
  card.setAttribute('role', problem === 'logged-out' ? 'status' : 'alert');

  card.append(lockIcon(), el('h1', undefined, TITLES[problem]), el('p', 'lead', LEADS[problem]));
  if (detail) card.append(el('p', 'muted small', `Gateway said: ${detail}`));

  const how = el('div', 'auth-how');
  how.append(el('h2', undefined, 'How to get in'));
  const steps = el('ol');
  const s1 = el('li');
  s1.append(document.createTextNode('Open the login link the gateway printed when it started (within 2 minutes of the start):'));
  const pre1 = el('pre');
  pre1.textContent = `gateway listening on ${origin} (dashboard: ${origin}/#code=…)`;
  s1.append(pre1);
  const s2 = el('li');
  s2.append(document.createTextNode('Or make a new link with the operator token, and open the "url" it answers:'));
  const pre2 = el('pre');
  pre2.textContent = `curl -X POST -H "Authorization: Bearer $OPERATOR_TOKEN" ${origin}/api/login-codes`;
  s2.append(pre2);
  const s3 = el('li', undefined, 'Or paste the operator token here:');
  steps.append(s1, s2, s3);
  how.append(steps);

  const form = el('form', 'auth-form');
  const input = el('input');
  input.type = 'password';
  input.autocomplete = 'off';
  input.placeholder = 'operator token';
  input.setAttribute('aria-label', 'Operator token');
  input.required = true;
  const button = el('button', 'primary', 'Log in');
  button.type = 'submit';
  const error = el('p', 'error small');
  error.dataset.testid = 'auth-form-error';
  error.hidden = true;
  form.append(input, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    button.disabled = true;
    logInWithToken(t).then(
      () => window.location.reload(),
      (err: Error & { code?: string }) => {
        button.disabled = false;
        error.textContent = `${err.code ? `${err.code}: ` : ''}${err.message}`;
        error.hidden = false;
      },
    );
  });
  how.append(form, error);
  card.append(how, el('p', 'muted small', 'The token is exchanged once for a login session (a cookie only the gateway reads); this page keeps neither in its storage nor in any address.'));
  page.append(card);
  document.body.replaceChildren(page);
  document.title = 'Log in · Telemetry gateway';
}
