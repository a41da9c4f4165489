/**
 * Who may connect: devices by a token listed (hashed) in the registry or derived from the fleet
 * key; operators by the operator token. Comparisons are constant-time; tokens are never logged.
 */
import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { validateLabels } from './registry/labels.js';

import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../devices/device-id.js';

export { DEVICE_ID_PATTERN };

export interface RegistryEntry {
  id: string;
  /** "sha256:<hex>" of the device's token. */
  tokenHash?: string;
  /** Device type: names the schema of its channels (units, names). */
  type?: string;
  name?: string;
  /** Key/value labels, e.g. { site: "north" } (registry/labels.ts has the rules). */
  labels?: Record<string, string>;
  /** Set once the device has a token of its own from the management API: the fleet-derived one no longer works. */
  ownToken?: boolean;
  /** The token before the last rotation, still valid until `previousUntil` (ms since 1970). */
  previousTokenHash?: string;
  previousUntil?: number;
  /** A disabled device is refused at connect (DEVICE_DISABLED) whatever its token. */
  disabled?: boolean;
}

/** Where the Authenticator looks devices up: the live registry (registry/registry.ts), or a plain Map. */
export interface RegistryLookup {
  get(id: string): RegistryEntry | undefined;
}

export function hashToken(token: string): string {
  return 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Reads and validates a registry file: `{ "devices": [ { "id", "tokenHash", "type"?, "name"?, "labels"? } ] }`. */
export function loadRegistry(path: string): Map<string, RegistryEntry> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`registry ${path} could not be read as JSON (--registry / GATEWAY_REGISTRY): ${(err as Error).message}`);
  }
  const list = (doc as { devices?: unknown })?.devices;
  if (!Array.isArray(list)) throw new ConfigError(`registry ${path} must be { "devices": [ ... ] }`);
  const out = new Map<string, RegistryEntry>();
  list.forEach((e: RegistryEntry, i) => {
    if (typeof e?.id !== 'string' || !DEVICE_ID_PATTERN.test(e.id)) {
      throw new ConfigError(`registry ${path}: devices[${i}].id must be ${DEVICE_ID_RULE} (got ${JSON.stringify(e?.id)})`);
    }
    if (e.tokenHash !== undefined && !/^sha256:[0-9a-f]{64}$/.test(e.tokenHash)) {
      throw new ConfigError(`registry ${path}: devices[${i}].tokenHash must be "sha256:" + 64 lowercase hex digits (sha256 of the token)`);
    }
    if (out.has(e.id)) throw new ConfigError(`registry ${path}: device id "${e.id}" is listed twice`);
    let labels: Record<string, string> | undefined;
    if (e.labels !== undefined) {
      try {
        labels = validateLabels(e.labels);
      } catch (err) {
        throw new ConfigError(`registry ${path}: devices[${i}].labels: ${(err as Error).message}`);
      }
    }
    out.set(e.id, { id: e.id, tokenHash: e.tokenHash, type: e.type, name: e.name, ...(labels ? { labels } : {}) });
  });
  return out;
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export type DeviceAuthResult =
  | { ok: true; entry: RegistryEntry | undefined }
  | { ok: false; code: 'BAD_DEVICE_ID' | 'UNAUTHORIZED' | 'DEVICE_DISABLED'; message: string };

/** The message of a DEVICE_DISABLED refusal, one wording for every transport. */
export const DISABLED_MESSAGE = 'this device is disabled by an operator (POST /api/devices/{id}/enable lets it in again)';

export class Authenticator {
  /** The fleet key as a key object, made once (not per connecting device). */
  private readonly fleetSecret: KeyObject | undefined;

  constructor(
    private readonly registry: RegistryLookup,
    fleetKey: string | undefined,
    private readonly operatorToken: string,
  ) {
    this.fleetSecret = fleetKey === undefined ? undefined : createSecretKey(Buffer.from(fleetKey, 'utf8'));
  }

  /** Registry entry for a device, if it is listed. */
  entry(id: string): RegistryEntry | undefined {
    return this.registry.get(id);
  }

  device(id: string, token: string): DeviceAuthResult {
    if (!DEVICE_ID_PATTERN.test(id)) {
      return { ok: false, code: 'BAD_DEVICE_ID', message: `device id must be ${DEVICE_ID_RULE}` };
    }
    const entry = this.registry.get(id);
    if (token && this.tokenValid(id, token, entry)) {
      // Checked after the token, so only the device itself learns that it is disabled.
      if (entry?.disabled) return { ok: false, code: 'DEVICE_DISABLED', message: DISABLED_MESSAGE };
      return { ok: true, entry };
    }
    return { ok: false, code: 'UNAUTHORIZED', message: token ? 'the token is not valid for this device id' : 'no token: send Authorization: Bearer <token> or ?token=' };
  }

  private tokenValid(id: string, token: string, entry: RegistryEntry | undefined): boolean {
    if (entry?.tokenHash || entry?.previousTokenHash) {
      const hash = hashToken(token);
      if (entry.tokenHash && equalHex(hash, entry.tokenHash)) return true;
      // The token before a rotation, during its grace period.
      if (entry.previousTokenHash && Date.now() < (entry.previousUntil ?? 0) && equalHex(hash, entry.previousTokenHash)) return true;
    }
    if (this.fleetSecret === undefined || entry?.ownToken) return false;
    const derived = createHmac('sha256', this.fleetSecret).update(id, 'utf8').digest('hex');
    return equalHex(/[A-Z]/.test(token) ? token.toLowerCase() : token, derived);
  }

  operator(token: string): boolean {
    return token !== '' && equalHex(token, this.operatorToken);
  }
}

/** The bearer token of a request: `Authorization: Bearer x` first, then `?token=x`. */
export function bearerToken(authorization: string, query: { get(name: string): string | null } | { param(name: string): string | null }): string {
  // The usual form without a match object (every device connection passes here).
  if (authorization.startsWith('Bearer ')) {
    const t = authorization.slice(7);
    if (t !== '' && !/\s/.test(t)) return t;
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (m) return m[1]!;
  return ('param' in query ? query.param('token') : query.get('token')) ?? '';
}
