/**
 * Device management without restarts: add a device (its token made here and shown once), edit
 * its name, type and labels, rotate its token with a grace period for the old one, disable and
 * enable it, delete it (and its history). Each change is durable before it is answered
 * (registry.ts, store.ts), then takes effect at once: the device table shows it, a disabled or
 * deleted device's connection is closed, and listeners hear of it (the live fleet view, the
 * cluster). Tokens are never logged or stored, only their hashes.
 */
import { randomBytes } from 'node:crypto';
import type { DevicePatch, NewDeviceRequest } from '../../devices/api/json.js';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../../devices/device-id.js';
import { fleetToken } from '../../devices/token.js';
import { hashToken, DISABLED_MESSAGE, type RegistryEntry } from '../auth.js';
import type { DeviceState, DeviceTable } from '../devices.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DeviceSessions } from '../session/sessions.js';
import type { Storage } from '../storage/index.js';
import { LabelError, validateLabels } from './labels.js';
import type { DeviceRegistry } from './registry.js';
import type { StoredDevice } from './store.js';

/** How long the token before a rotation keeps working when the request does not say. */
export const DEFAULT_GRACE_SECONDS = 3600;
/** The longest grace a rotation may give the old token (7 days). */
export const MAX_GRACE_SECONDS = 7 * 24 * 3600;
export const MAX_NAME_LENGTH = 128;

export type AdminAction = 'add' | 'update' | 'rotate' | 'disable' | 'enable' | 'delete';
export type AdminErrorCode = 'BAD_DEVICE_ID' | 'BAD_DEVICE' | 'BAD_LABELS' | 'UNKNOWN_DEVICE_TYPE' | 'DEVICE_EXISTS' | 'DEVICE_NOT_FOUND';

/** A management request the gateway refuses (nothing changed). */
export class AdminError extends GatewayError {
  override name = 'AdminError';
  constructor(
    override readonly code: AdminErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export interface AdminOptions {
  fleetKey: string | undefined;
  /** Whether a device type exists now (the current types, asked at call time). */
  knownType(type: string): boolean;
  log: Logger;
}

export type ChangeListener = (device: DeviceState) => void;
export type CommitListener = (change: StoredDevice) => void;

export class DeviceAdmin {
  private readonly changeListeners: ChangeListener[] = [];
  private readonly commitListeners: CommitListener[] = [];
  /** Requests by action and outcome, for /metrics. */
  private readonly counts = new Map<string, { action: AdminAction; result: string; n: number }>();

  constructor(
    private readonly registry: DeviceRegistry,
    private readonly devices: DeviceTable,
    private readonly sessions: DeviceSessions,
    private readonly storage: Storage,
    private readonly opts: AdminOptions,
  ) {}

  /** A device's shown state changed (the live fleet view subscribes). */
  onChange(l: ChangeListener): void {
    this.changeListeners.push(l);
  }

  /** A change was made here and is durable (the cluster publishes it to the other instances). */
  onCommit(l: CommitListener): void {
    this.commitListeners.push(l);
  }

  /** Counts one request's outcome: ok, a refusal code, or REGISTRY_NOT_PERSISTED. */
  count(action: AdminAction, result: string): void {
    const key = action + '/' + result;
    const c = this.counts.get(key);
    if (c) c.n++;
    else this.counts.set(key, { action, result, n: 1 });
  }

  outcomes(): IterableIterator<{ action: AdminAction; result: string; n: number }> {
    return this.counts.values();
  }

  add(req: NewDeviceRequest): { entry: RegistryEntry; token: string } {
    if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new AdminError('BAD_DEVICE', 'the body must be a JSON object: {"id", "type"?, "name"?, "labels"?}');
    const id = checkId(req.id);
    unknownFields(req, ['id', 'type', 'name', 'labels']);
    if (this.registry.get(id)) throw new AdminError('DEVICE_EXISTS', `device "${id}" exists already: PATCH /api/devices/${id} changes it, POST /api/devices/${id}/token gives it a new token`);
    const token = newToken();
    const change: StoredDevice = { id, tokenHash: hashToken(token), ownToken: true, rev: this.registry.nextRev(id) };
    if (req.type !== undefined) change.type = this.checkType(req.type);
    if (req.name !== undefined) change.name = checkName(req.name);
    if (req.labels !== undefined) change.labels = checkLabels(req.labels);
    const entry = this.commit('add', change)!;
    return { entry, token };
  }

  update(id: string, patch: DevicePatch): RegistryEntry {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new AdminError('BAD_DEVICE', 'the body must be a JSON object: {"type"?, "name"?, "labels"?}');
    unknownFields(patch, ['type', 'name', 'labels']);
    const change = this.changeOf(id);
    if (patch.type !== undefined) {
      if (patch.type === null) delete change.type;
      else change.type = this.checkType(patch.type);
    }
    if (patch.name !== undefined) {
      if (patch.name === null) delete change.name;
      else change.name = checkName(patch.name);
    }
    if (patch.labels !== undefined) change.labels = checkLabels(patch.labels);
    return this.commit('update', change)!;
  }

  /** A new token; the one before keeps working for `graceSeconds`. */
  rotate(id: string, graceSeconds: unknown = DEFAULT_GRACE_SECONDS): { entry: RegistryEntry; token: string } {
    if (typeof graceSeconds !== 'number' || !Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
      throw new AdminError('BAD_DEVICE', `graceSeconds must be a whole number from 0 to ${MAX_GRACE_SECONDS} (default ${DEFAULT_GRACE_SECONDS})`);
    }
    const change = this.changeOf(id);
    // The token in use until now: its own, or the fleet-derived one.
    const old = change.tokenHash ?? (this.opts.fleetKey !== undefined && !change.ownToken ? hashToken(fleetToken(this.opts.fleetKey, id)) : undefined);
    const token = newToken();
    change.tokenHash = hashToken(token);
    change.ownToken = true;
    if (old !== undefined && graceSeconds > 0) {
      change.previousTokenHash = old;
      change.previousUntil = Date.now() + graceSeconds * 1000;
    } else {
      delete change.previousTokenHash;
      delete change.previousUntil;
    }
    return { entry: this.commit('rotate', change)!, token };
  }

  disable(id: string): RegistryEntry {
    const change = this.changeOf(id);
    change.disabled = true;
    return this.commit('disable', change)!;
  }

  enable(id: string): RegistryEntry {
    const change = this.changeOf(id);
    delete change.disabled;
    return this.commit('enable', change)!;
  }

  /** Deletes a device (and with `history` its stored readings). Resolves once the history is gone. */
  async remove(id: string, history: boolean): Promise<void> {
    checkId(id);
    if (this.registry.get(id) || this.devices.get(id)) {
      const change: StoredDevice = { id, deleted: true, rev: this.registry.nextRev(id) };
      if (history) change.history = true;
      this.commit('delete', change);
    } else if (!history) {
      throw new AdminError('DEVICE_NOT_FOUND', `no device "${id}" (it is neither in the registry nor has it connected)`);
    }
    // Also for a device deleted already: a DELETE whose history part failed can be repeated.
    if (history) await this.storage.deleteDevice(id);
  }

  /**
   * A change another cluster instance made: applied when newer than what this instance knows
   * (a disk that refuses it is logged; the instance catches up when the change is sent again).
   */
  applyRemote(change: StoredDevice): void {
    if (!this.registry.isNewer(change)) return;
    try {
      this.apply(change);
    } catch (err) {
      this.opts.log.error({ device: change.id, err: (err as Error).message }, 'could not store a device change made on another instance; this instance keeps the device as it was until the change comes again');
      return;
    }
    if (change.deleted && change.history) {
      this.storage.deleteDevice(change.id).catch((err: Error) => this.opts.log.warn({ device: change.id, err: err.message }, 'could not delete the history of a device deleted on another instance'));
    }
  }

  /** The device's entry as a change to make: what it is now (registry, or a bare fleet device). */
  private changeOf(id: string): StoredDevice {
    checkId(id);
    const entry = this.registry.get(id);
    if (!entry && !this.devices.get(id) && this.opts.fleetKey === undefined) {
      throw new AdminError('DEVICE_NOT_FOUND', `no device "${id}": add it with POST /api/devices first`);
    }
    return { ...(entry ?? { id }), ...(entry?.labels ? { labels: { ...entry.labels } } : {}), rev: this.registry.nextRev(id) };
  }

  private commit(action: AdminAction, change: StoredDevice): RegistryEntry | undefined {
    const entry = this.apply(change);
    const d = this.devices.get(change.id);
    // Never the token: what changed, on which device.
    this.opts.log.info({ device: change.id, action, disabled: entry?.disabled === true, online: d?.online === true }, `device ${change.id}: ${DONE[action]} by an operator`);
    for (const l of this.commitListeners) l(change);
    return entry;
  }

  /** Stores the change (throws FileWriteError first when the disk refuses), then makes it take effect. */
  private apply(change: StoredDevice): RegistryEntry | undefined {
    const entry = this.registry.commit(change);
    if (change.deleted) {
      const d = this.devices.get(change.id);
      if (d === undefined) return undefined;
      this.sessions.evict(d, 'DEVICE_DELETED', 'this device was deleted by an operator');
      this.devices.remove(change.id);
      for (const l of this.changeListeners) l(d);
      return undefined;
    }
    // A device never seen appears in the fleet once it is managed (as the registry file's do).
    const d = this.devices.getOrCreate(change.id, entry);
    d.setEntry(entry);
    if (entry?.disabled) this.sessions.evict(d, 'DEVICE_DISABLED', DISABLED_MESSAGE);
    for (const l of this.changeListeners) l(d);
    return entry;
  }

  private checkType(type: unknown): string {
    if (typeof type !== 'string' || !this.opts.knownType(type)) {
      throw new AdminError('UNKNOWN_DEVICE_TYPE', `type ${JSON.stringify(type)} is not a device type: GET /api/device-types lists them`);
    }
    return type;
  }
}

const DONE: Record<AdminAction, string> = {
  add: 'added (its token was shown once to the operator)',
  update: 'changed',
  rotate: 'got a new token (the old one works until its grace period ends)',
  disable: 'disabled: its connection is closed and new ones are refused (DEVICE_DISABLED)',
  enable: 'enabled: it may connect again',
  delete: 'deleted: its connection is closed and its token no longer works',
};

function newToken(): string {
  return randomBytes(32).toString('hex');
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !DEVICE_ID_PATTERN.test(id)) throw new AdminError('BAD_DEVICE_ID', `${JSON.stringify(id)} is not a device id: ids are ${DEVICE_ID_RULE}`);
  return id;
}

function checkName(name: unknown): string {
  // Control characters would break log lines and table cells.
  if (typeof name !== 'string' || name.length < 1 || name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new AdminError('BAD_DEVICE', `name must be 1–${MAX_NAME_LENGTH} characters without control characters (null clears it)`);
  }
  return name;
}

function checkLabels(labels: unknown): Record<string, string> {
  try {
    return validateLabels(labels);
  } catch (err) {
    if (err instanceof LabelError) throw new AdminError('BAD_LABELS', err.message);
    throw err;
  }
}

function unknownFields(body: object, known: string[]): void {
  for (const k of Object.keys(body)) {
    if (!known.includes(k)) throw new AdminError('BAD_DEVICE', `unknown field "${k.slice(0, 64)}": the body takes ${known.join(', ')}`);
  }
}
