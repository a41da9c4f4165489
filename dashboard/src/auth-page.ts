/**
 * The full-page message for a missing or refused operator token: what is wrong, and how to get a
 * working link (the URL the gateway printed at start carries the token). A token can also be pasted.
 */
import { setToken } from './token.js';

export type AuthProblem = 'missing' | 'refused';

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
  card.setAttribute('role', 'alert');

  card.append(
    lockIcon(),
    el('h1', undefined, problem === 'missing' ? 'This dashboard needs the operator token' : 'The gateway refused the operator token'),
    el(
      'p',
      'lead',
      problem === 'missing'
        ? 'The page was opened without a token, so it cannot read the fleet or send commands.'
        : 'The token this page was given is wrong or out of date (HTTP 401 UNAUTHORIZED). A gateway started without --operator-token makes a new token each time it starts, so links from an earlier run stop working.',
    ),
  );
  if (detail) card.append(el('p', 'muted small', `Gateway said: ${detail}`));

  const how = el('div', 'auth-how');
  how.append(el('h2', undefined, 'How to fix it'));
  const steps = el('ol');
  const s1 = el('li');
  s1.append(document.createTextNode('Open the dashboard link the gateway printed when it started. It carries the token:'));
  const pre = el('pre');
  pre.textContent = `gateway listening on ${origin} (dashboard: ${origin}/?token=…)`;
  s1.append(pre);
  const s2 = el('li');
  s2.append(document.createTextNode('If the gateway was started with '), el('code', undefined, '--operator-token'), document.createTextNode(' or '), el('code', undefined, 'GATEWAY_OPERATOR_TOKEN'), document.createTextNode(', open '), el('code', undefined, `${origin}/?token=<that token>`), document.createTextNode('.'));
  const s3 = el('li', undefined, 'Or paste the token here:');
  steps.append(s1, s2, s3);
  how.append(steps);

  const form = el('form', 'auth-form');
  const input = el('input');
  input.type = 'password';
  input.autocomplete = 'off';
  input.placeholder = 'operator token';
  input.setAttribute('aria-label', 'Operator token');
  input.required = true;
  const button = el('button', 'primary', 'Use this token');
  button.type = 'submit';
  form.append(input, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    window.location.reload();
  });
  how.append(form);
  card.append(how, el('p', 'muted small', 'The token stays in this browser tab only (session storage) and is removed from the address bar, so it does not end up in the history or in links you share.'));
  page.append(card);
  document.body.replaceChildren(page);
  document.title = 'Token needed · Telemetry gateway';
}
