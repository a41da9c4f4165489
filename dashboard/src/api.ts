/**
 * The gateway's HTTP API (README "HTTP API"). The browser sends the session cookie by itself
 * (same origin) and an Origin header with every change, which is what the gateway checks.
 */
import type {
  Alarm,
  AlarmActionRequest,
  AlarmList,
  AlarmSeverity,
  AlarmState,
  CommandList,
  CommandRecord,
  CommandRequest,
  DeviceDeleted,
  DeviceList,
  DevicePatch,
  DeviceSummary,
  DeviceTokenAnswer,
  DeviceTypeSpec,
  HistoryAnswer,
  HistoryPoint,
  NewDeviceRequest,
} from './types.js';

/** An `{ error: { code, message } }` answer, or a network failure (status 0, code NETWORK). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type UnauthorizedListener = (err: ApiError) => void;
const unauthorizedListeners: UnauthorizedListener[] = [];

/** Called whenever any request gets HTTP 401. */
export function onUnauthorized(listener: UnauthorizedListener): void {
  unauthorizedListeners.push(listener);
}

async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal, extraHeaders: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: signal ?? null, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `cannot reach the gateway (${(err as Error).message})`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (res.statusText || `HTTP ${res.status}`));
    if (res.status === 401 && !path.startsWith('/api/session')) for (const l of unauthorizedListeners) l(err);
    throw err;
  }
  if (parsed === undefined) throw new ApiError(res.status, 'BAD_RESPONSE', `${method} ${path} did not answer JSON`);
  return parsed as T;
}

const enc = encodeURIComponent;

export async function listDevices(): Promise<DeviceSummary[]> {
  return (await request<DeviceList>('GET', '/api/devices')).devices;
}

export function getDevice(id: string): Promise<DeviceSummary> {
  return request('GET', `/api/devices/${enc(id)}`);
}

export async function listDeviceTypes(): Promise<DeviceTypeSpec[]> {
  return (await request<{ types: DeviceTypeSpec[] }>('GET', '/api/device-types')).types;
}

export async function history(id: string, channel: number, from: number, to: number, points: number, signal?: AbortSignal): Promise<HistoryPoint[]> {
  const q = `channel=${channel}&from=${Math.floor(from)}&to=${Math.ceil(to)}&points=${Math.max(1, Math.min(10_000, Math.round(points)))}`;
  return (await request<HistoryAnswer>('GET', `/api/devices/${enc(id)}/history?${q}`, undefined, signal)).points;
}

export async function listCommands(id: string, limit = 50): Promise<CommandRecord[]> {
  return (await request<CommandList>('GET', `/api/devices/${enc(id)}/commands?limit=${limit}`)).commands;
}

export type NewCommand = CommandRequest;

export function sendCommand(id: string, command: NewCommand): Promise<CommandRecord> {
  return request('POST', `/api/devices/${enc(id)}/commands`, command);
}

/** What `GET /api/alarms` narrows to: states and severities are lists (any of them), newest first. */
export interface AlarmQuery {
  state?: readonly AlarmState[];
  severity?: readonly AlarmSeverity[];
  device?: string;
  limit?: number;
}

export async function listAlarms(q: AlarmQuery = {}, signal?: AbortSignal): Promise<Alarm[]> {
  const params = new URLSearchParams();
  if (q.state?.length) params.set('state', q.state.join(','));
  if (q.severity?.length) params.set('severity', q.severity.join(','));
  if (q.device) params.set('device', q.device);
  if (q.limit !== undefined) params.set('limit', String(q.limit));
  const query = params.toString();
  // The contract is `{ alarms: [...] }`; a bare list is read the same (DESIGN.md allows either).
  const body = await request<AlarmList | Alarm[]>('GET', `/api/alarms${query ? `?${query}` : ''}`, undefined, signal);
  return Array.isArray(body) ? body : body.alarms;
}

/** `POST /api/alarms/{id}/acknowledge` or `/clear`, with the operator's note; answers the alarm as it is now. */
export function alarmAction(id: string, action: 'acknowledge' | 'clear', note?: string): Promise<Alarm> {
  const body: AlarmActionRequest = note ? { note } : {};
  return request('POST', `/api/alarms/${enc(id)}/${action}`, body);
}

// Device management (README "Managing devices").

export function addDevice(device: NewDeviceRequest): Promise<DeviceTokenAnswer> {
  return request('POST', '/api/devices', device);
}

export function updateDevice(id: string, patch: DevicePatch): Promise<DeviceSummary> {
  return request('PATCH', `/api/devices/${enc(id)}`, patch);
}

export function rotateToken(id: string, graceSeconds: number): Promise<DeviceTokenAnswer> {
  return request('POST', `/api/devices/${enc(id)}/token`, { graceSeconds });
}

export function setDisabled(id: string, disabled: boolean): Promise<DeviceSummary> {
  return request('POST', `/api/devices/${enc(id)}/${disabled ? 'disable' : 'enable'}`);
}

export function deleteDevice(id: string, history: boolean): Promise<DeviceDeleted> {
  return request('DELETE', `/api/devices/${enc(id)}${history ? '?history=true' : ''}`);
}

/** Exchanges a one-time login code, or the operator token once, for the session cookie. */
export async function createSession(credential: { code: string } | { token: string }): Promise<void> {
  if ('code' in credential) await request('POST', '/api/session', { code: credential.code });
  else await request('POST', '/api/session', undefined, undefined, { authorization: `Bearer ${credential.token}` });
}

/** Asks whether the session is still good (and so renews it). Throws ApiError 401 when it is not. */
export async function checkSession(): Promise<void> {
  await request('GET', '/api/session');
}

export async function logOut(): Promise<void> {
  await request('DELETE', '/api/session');
}

/** Whether the gateway refuses this browser's session (every /api route checks it first). */
export async function sessionRefused(): Promise<boolean> {
  try {
    const res = await fetch('/api/session', { cache: 'no-store', credentials: 'same-origin' });
    return res.status === 401;
  } catch {
    return false; // unreachable is not the session's fault
  }
}
