/**
 * Commands for devices, with a lifecycle an operator can trust. Each device has an ordered,
 * bounded queue; commands go out in order on whatever transport the device is connected by, wait
 * (up to their TTL) while it is offline, and every transition is time-stamped, persisted and
 * published as a change event (onChange). After a restart nothing stays in a non-final state without
 * a timer. It hears what moves commands along where it lives (listen()): results from ingest, presence
 * changes, and delivery receipts from transports that have them.
 */
import { randomUUID } from 'node:crypto';
import type { CommandRequest } from '../../devices/api/json.js';
import { CommandStatus, encodeCommand, encodeCommandResult, MAX_NAME_BYTES, type CommandResultFrame } from '../../devices/codec/index.js';
import { deviceType } from '../../devices/device-types.js';
import { checkArgs } from '../../devices/types/args.js';
import type { DeviceLink, DeviceState, DeviceTable } from '../devices.js';
import type { Ingest } from '../ingest.js';
import type { Logger } from '../log.js';
import { CommandError, isFinal, type CommandRecord, type CommandState } from './command.js';
import type { CommandJournal } from './journal.js';

export interface CommandOptions {
  /** Most unfinished commands per device. */
  maxQueued: number;
  /** Largest `args`, as JSON text, in bytes. */
  maxArgsBytes: number;
  defaultTtlMs: number;
  defaultTimeoutMs: number;
  /** Finished commands kept per device for GET (older ones are forgotten). */
  keepFinished: number;
  /**
   * In a cluster: this instance's id. Commands it accepts carry it as `owner`; commands other
   * instances own are kept as read-only replicas (for GET and the live view) and never driven here.
   */
  instance?: string | undefined;
}

export type CommandListener = (c: CommandRecord) => void;
/** In a cluster: a result (or a delivery receipt) for a command owned elsewhere, to hand to its owner. */
export type RelayListener = (deviceId: string, frame: Uint8Array) => void;

/** What moves commands along; each source is optional. */
export interface CommandSources {
  ingest?: Pick<Ingest, 'onResult'>;
  presence?: { onConnect(l: (device: DeviceState, link: DeviceLink) => void): void; onDisconnect(l: (device: DeviceState, link: DeviceLink) => void): void };
  /** A transport whose devices confirm delivery themselves (MQTT PUBACK). */
  deliveries?: { onDelivered(l: (deviceId: string, commandId: string, note: string) => void): void };
}

/** A POST body as received: the fields of the API's CommandRequest, each still to be checked. */
export type NewCommand = { [K in keyof CommandRequest]?: unknown };

const MAX_TTL_MS = 7 * 24 * 3600_000;
const COMMAND_FIELDS: ReadonlySet<string> = new Set(['name', 'args', 'ttlMs', 'timeoutMs', 'idempotencyKey'] satisfies (keyof CommandRequest)[]);
const utf8 = new TextEncoder();

function intIn(v: unknown, name: string, fallback: number, min: number, max: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new CommandError('BAD_COMMAND', `${name} must be a whole number of ms from ${min} to ${max}`);
  }
  return v;
}

/**
 * A device whose type lists its commands gets only those, with arguments that fit their schema
 * (the types in force now: a reload applies to the next command). Other devices get any command.
 */
function checkDeclared(device: DeviceState, name: string, args: unknown): void {
  const spec = deviceType(device.type);
  if (spec?.commands === undefined) return;
  const command = spec.commands.find((c) => c.name === name);
  if (command === undefined) {
    const names = spec.commands.map((c) => c.name);
    throw new CommandError('UNKNOWN_COMMAND', `"${name}" is not a command of type "${spec.type}" (device "${device.id}"): it takes ${names.length ? names.join(', ') : 'no commands'} (GET /api/device-types)`);
  }
  const wrong = checkArgs(command.schema, args);
  if (wrong !== undefined) throw new CommandError('BAD_COMMAND_ARGS', `${name} for type "${spec.type}": ${wrong}`);
}

export class CommandService {
  private readonly byId = new Map<string, CommandRecord>();
  /** Unfinished commands per device, in creation order. */
  private readonly pending = new Map<string, CommandRecord[]>();
  /** Finished commands per device, oldest first, at most keepFinished. */
  private readonly finished = new Map<string, CommandRecord[]>();
  private readonly byIdempotencyKey = new Map<string, string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /**
   * Commands handed to a link that confirms what it took (publishReliable: a broker's PUBACK, a
   * socket write), by that link. They stay `queued` until it does; the retry tick skips them.
   */
  private readonly inFlight = new Map<string, DeviceLink>();
  private retryTimer: NodeJS.Timeout | undefined;
  staleResults = 0;
  /** Commands this instance finished since start, by how they ended (metrics: gateway_command_outcomes_total). */
  readonly outcomes: Record<'acked' | 'failed' | 'expired' | 'timed_out', number> = { acked: 0, failed: 0, expired: 0, timed_out: 0 };
  /** See CommandOptions.instance. */
  readonly instance: string | undefined;
  private readonly changeListeners: CommandListener[] = [];
  private readonly forgetListeners: CommandListener[] = [];
  private readonly relayListeners: RelayListener[] = [];

  constructor(
    private readonly devices: DeviceTable,
    private readonly journal: CommandJournal,
    private readonly log: Logger,
    private readonly opts: CommandOptions,
  ) {
    this.instance = opts.instance;
  }

  /** Every change of a command (created, moved, or a replica updated). */
  onChange(l: CommandListener): void {
    this.changeListeners.push(l);
  }

  /** In a cluster: a command of this instance's that it no longer keeps. */
  onForget(l: CommandListener): void {
    this.forgetListeners.push(l);
  }

  /** In a cluster: results and receipts for commands owned by other instances. */
  onRelay(l: RelayListener): void {
    this.relayListeners.push(l);
  }

  /** Subscribes to what moves commands along. */
  listen(from: CommandSources): void {
    from.ingest?.onResult((device, result) => this.onResult(device, result));
    from.presence?.onConnect((device) => this.dispatch(device));
    from.presence?.onDisconnect((device) => this.deviceDisconnected(device));
    from.deliveries?.onDelivered((deviceId, commandId, note) => this.delivered(deviceId, commandId, note));
  }

  private changed(c: CommandRecord): void {
    for (const l of this.changeListeners) l(c);
  }

  private relay(deviceId: string, frame: Uint8Array): void {
    for (const l of this.relayListeners) l(deviceId, frame);
  }

  /** Loads what the last run left; unfinished commands are re-armed, sent-but-undelivered ones requeued. */
  start(): void {
    const loaded = [...this.journal.load().values()].sort((a, b) => a.createdAt - b.createdAt);
    for (const c of loaded) {
      // What the journal holds is this instance's, whatever id it ran under before.
      if (this.instance !== undefined) c.owner = this.instance;
      this.index(c);
    }
    this.journal.open(() => this.kept());
    const now = Date.now();
    for (const c of loaded) {
      if (isFinal(c)) continue;
      if (c.state === 'sent') this.move(c, 'queued', 'requeued: the gateway restarted before the device confirmed delivery', now);
      else this.arm(c, now);
    }
    // Retries what backpressure held back, in order.
    this.retryTimer = setInterval(() => {
      for (const id of this.pending.keys()) {
        const d = this.devices.get(id);
        if (d) this.dispatch(d);
      }
    }, 1000);
  }

  private mine(c: CommandRecord): boolean {
    return c.owner === undefined || c.owner === this.instance;
  }

  /** This instance's commands, for the journal. */
  private kept(): CommandRecord[] {
    const out: CommandRecord[] = [];
    for (const list of this.finished.values()) for (const c of list) if (this.mine(c)) out.push(c);
    for (const list of this.pending.values()) for (const c of list) if (this.mine(c)) out.push(c);
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  private index(c: CommandRecord): void {
    this.byId.set(c.id, c);
    if (c.idempotencyKey) this.byIdempotencyKey.set(`${c.deviceId}\u0000${c.idempotencyKey}`, c.id);
    const map = isFinal(c) ? this.finished : this.pending;
    let list = map.get(c.deviceId);
    if (!list) map.set(c.deviceId, (list = []));
    list.push(c);
    if (isFinal(c)) this.trimFinished(c.deviceId, list);
  }

  private trimFinished(deviceId: string, list: CommandRecord[]): void {
    while (list.length > this.opts.keepFinished) {
      const old = list.shift()!;
      this.byId.delete(old.id);
      if (old.idempotencyKey) this.byIdempotencyKey.delete(`${deviceId}\u0000${old.idempotencyKey}`);
      if (this.instance !== undefined && this.mine(old)) for (const l of this.forgetListeners) l(old);
    }
  }

  /**
   * Validates, persists and queues a command; the same idempotency key again returns the first
   * command. Throws FileWriteError, with nothing queued, when the journal cannot take it.
   */
  create(deviceId: string, input: NewCommand): { command: CommandRecord; created: boolean } {
    const device = this.devices.get(deviceId);
    if (!device) throw new CommandError('DEVICE_NOT_FOUND', `no device "${deviceId}" (it is neither in the registry nor has it connected)`);
    if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new CommandError('BAD_COMMAND', 'the body must be a JSON object {name, args, ttlMs, idempotencyKey?}');
    // A typo ("ttl", "timeout") or another platform's shape ("method", "params") would otherwise go out with the defaults.
    for (const k in input) {
      if (!COMMAND_FIELDS.has(k)) throw new CommandError('BAD_COMMAND', `unknown field "${k.slice(0, 64)}": the body takes ${[...COMMAND_FIELDS].join(', ')}`);
    }
    const { name, args = null } = input;
    if (typeof name !== 'string' || name.length === 0 || utf8.encode(name).byteLength > MAX_NAME_BYTES || /[\u0000-\u001f\u007f]/.test(name)) {
      throw new CommandError('BAD_COMMAND', `name is required: a string of 1 to ${MAX_NAME_BYTES} bytes without control characters`);
    }
    let key: string | undefined;
    if (input.idempotencyKey !== undefined) {
      if (typeof input.idempotencyKey !== 'string' || input.idempotencyKey.length === 0 || input.idempotencyKey.length > 128) {
        throw new CommandError('BAD_COMMAND', 'idempotencyKey must be a string of 1 to 128 characters');
      }
      key = input.idempotencyKey;
      const existing = this.byIdempotencyKey.get(`${deviceId}\u0000${key}`);
      if (existing) return { command: this.byId.get(existing)!, created: false };
    }
    const argsText = JSON.stringify(args);
    if (utf8.encode(argsText).byteLength > this.opts.maxArgsBytes) {
      throw new CommandError('COMMAND_TOO_LARGE', `args are ${utf8.encode(argsText).byteLength} bytes as JSON; the limit is ${this.opts.maxArgsBytes} (--command-max-args-bytes)`);
    }
    checkDeclared(device, name, args);
    const ttlMs = intIn(input.ttlMs, 'ttlMs', this.opts.defaultTtlMs, 1, MAX_TTL_MS);
    const timeoutMs = intIn(input.timeoutMs, 'timeoutMs', this.opts.defaultTimeoutMs, 100, 24 * 3600_000);
    const queued = this.pending.get(deviceId)?.length ?? 0;
    if (queued >= this.opts.maxQueued) {
      throw new CommandError('COMMAND_QUEUE_FULL', `device "${deviceId}" has ${queued} unfinished commands, the most it may have (--command-queue); wait for them to finish or expire`);
    }
    const now = Date.now();
    const c: CommandRecord = { id: randomUUID(), deviceId, name, args, state: 'queued', createdAt: now, expiresAt: now + ttlMs, timeoutMs, history: [{ state: 'queued', at: now }] };
    if (key) c.idempotencyKey = key;
    if (this.instance !== undefined) c.owner = this.instance;
    // Persisted before it is queued: one the journal cannot take is refused (FileWriteError) and
    // leaves nothing behind, so a client retrying it makes one command, not two.
    this.journal.persist(c);
    this.index(c);
    this.changed(c);
    this.arm(c, now);
    this.dispatch(device);
    return { command: c, created: true };
  }

  get(id: string): CommandRecord | undefined {
    return this.byId.get(id);
  }

  /** A device's commands, newest first. */
  forDevice(deviceId: string, limit: number): CommandRecord[] {
    const all = [...(this.finished.get(deviceId) ?? []), ...(this.pending.get(deviceId) ?? [])];
    return all.sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  }

  /** Sends the device's queued commands in order, stopping at the first its connection cannot take. */
  dispatch(device: DeviceState): void {
    const list = this.pending.get(device.id);
    const link = device.link;
    if (!list || !device.online || !link) return;
    const now = Date.now();
    for (const c of [...list]) {
      if (c.state !== 'queued' || !this.mine(c) || this.inFlight.has(c.id)) continue;
      if (now >= c.expiresAt) {
        this.move(c, 'expired', 'its TTL passed before delivery', now);
        continue;
      }
      const bytes = encodeCommand({ timestamp: now }, { commandId: c.id, name: c.name, expiresAt: c.expiresAt, args: JSON.stringify(c.args) });
      if (link.publishReliable) {
        if (!this.publishReliably(device, link, c, bytes)) break; // later commands wait too, so they still arrive in order
        continue;
      }
      if (link.send(bytes) === 'dropped') break;
      c.sentAt = now;
      this.move(c, 'sent', `over ${link.transport}`, now);
    }
  }

  /**
   * `sent` is a promise to operators: over a link that confirms what it took, the command becomes
   * `sent` only when it does (in bridge mode the external broker's PUBACK; a bridge without its
   * broker refuses at once instead of letting MQTT.js queue the publish offline). False when the
   * link refused at once: the command stays `queued`, its TTL running, and the retry tick tries again.
   */
  private publishReliably(device: DeviceState, link: DeviceLink, c: CommandRecord, bytes: Uint8Array): boolean {
    this.inFlight.set(c.id, link);
    let refused = false;
    link.publishReliable!(bytes, (err) => {
      // Not this attempt's any more: the connection ended and the command was requeued.
      if (this.inFlight.get(c.id) !== link) return;
      this.inFlight.delete(c.id);
      if (err) {
        refused = true;
        this.log.debug({ device: device.id, command: c.id, err: err.message }, 'command publish not taken; it stays queued and is tried again');
        return;
      }
      if (c.state !== 'queued' || device.link !== link || !device.online) return;
      const now = Date.now();
      c.sentAt = now;
      this.move(c, 'sent', `over ${link.transport}`, now);
    });
    return !refused;
  }

  /** The device's connection ended: what was sent but never confirmed goes back to the queue. */
  deviceDisconnected(device: DeviceState): void {
    const now = Date.now();
    for (const c of [...(this.pending.get(device.id) ?? [])]) {
      this.inFlight.delete(c.id);
      if (c.state === 'sent' && this.mine(c)) this.move(c, 'queued', 'requeued: the connection ended before the device confirmed delivery', now);
    }
  }

  /**
   * The device was deleted (device management): its unfinished commands fail, so a device that
   * later comes with the same id (a fleet-key device, or one added again) gets none of them.
   */
  deviceDeleted(deviceId: string): void {
    const now = Date.now();
    for (const c of [...(this.pending.get(deviceId) ?? [])]) {
      if (!this.mine(c)) continue;
      c.error = 'the device was deleted before the command finished';
      this.move(c, 'failed', 'the device was deleted', now);
    }
  }

  /** The transport confirmed the device has the command (MQTT PUBACK), or the device said "received". */
  delivered(deviceId: string, commandId: string, note: string): void {
    const c = this.byId.get(commandId);
    if (this.instance !== undefined && (!c || !this.mine(c))) {
      this.relay(deviceId, encodeCommandResult({ timestamp: Date.now() }, { commandId, status: CommandStatus.Received }));
      return;
    }
    if (c && c.deviceId === deviceId && (c.state === 'sent' || c.state === 'queued')) this.move(c, 'delivered', note, Date.now());
  }

  /**
   * A result frame from the device. In a cluster one for a command this instance does not own goes
   * to the owner; `relayed` marks one that came that way (every instance sees it, the owner takes it).
   */
  onResult(device: DeviceState, f: CommandResultFrame, relayed = false): void {
    const c = this.byId.get(f.commandId);
    if (this.instance !== undefined && (!c || !this.mine(c))) {
      if (!relayed) this.relay(device.id, encodeCommandResult({ timestamp: Date.now() }, { commandId: f.commandId, status: f.status, payload: f.payload }));
      return;
    }
    if (!c || c.deviceId !== device.id || isFinal(c)) {
      if (!relayed) this.staleResults++;
      return;
    }
    const now = Date.now();
    switch (f.status) {
      case CommandStatus.Received:
        this.delivered(device.id, c.id, 'the device confirmed receipt');
        return;
      case CommandStatus.Ok:
        c.result = parsePayload(f.payload);
        this.move(c, 'acked', undefined, now);
        return;
      case CommandStatus.Failed:
        c.error = String(parsePayload(f.payload) ?? 'failed');
        this.move(c, 'failed', 'the device reported failure', now);
        return;
      case CommandStatus.Rejected:
        c.error = `rejected by the device: ${String(parsePayload(f.payload) ?? 'unknown command')}`;
        this.move(c, 'failed', 'the device refused the command', now);
        return;
    }
  }

  private move(c: CommandRecord, state: CommandState, note: string | undefined, now: number): void {
    const wasFinal = isFinal(c);
    c.state = state;
    c.history.push(note ? { state, at: now, note } : { state, at: now });
    if (state === 'expired') c.error ??= 'TTL passed before delivery';
    if (state === 'timed_out') c.error ??= `no result within ${c.timeoutMs} ms of sending`;
    if (isFinal(c) && !wasFinal) {
      this.outcomes[state as keyof typeof this.outcomes]++;
      const list = this.pending.get(c.deviceId)!;
      list.splice(list.indexOf(c), 1);
      if (list.length === 0) this.pending.delete(c.deviceId);
      let done = this.finished.get(c.deviceId);
      if (!done) this.finished.set(c.deviceId, (done = []));
      done.push(c);
      this.trimFinished(c.deviceId, done);
      const t = this.timers.get(c.id);
      if (t) clearTimeout(t);
      this.timers.delete(c.id);
      this.inFlight.delete(c.id);
    } else {
      this.arm(c, now);
    }
    // A transition the journal cannot take stays in memory; the journal's rewrite carries it
    // once the disk takes writes again.
    this.journal.append(c);
    this.journal.compactIfLarge();
    this.changed(c);
  }

  /** One timer per unfinished command, at its next deadline (TTL until delivered, result timeout once sent). */
  private arm(c: CommandRecord, now: number): void {
    const old = this.timers.get(c.id);
    if (old) clearTimeout(old);
    let at = Infinity;
    if (c.state === 'queued' || c.state === 'sent') at = c.expiresAt;
    if ((c.state === 'sent' || c.state === 'delivered') && c.sentAt !== undefined) at = Math.min(at, c.sentAt + c.timeoutMs);
    if (at === Infinity) return;
    const t = setTimeout(() => this.fire(c), Math.max(0, at - now));
    this.timers.set(c.id, t);
  }

  private fire(c: CommandRecord): void {
    this.timers.delete(c.id);
    if (isFinal(c)) return;
    const now = Date.now();
    if ((c.state === 'queued' || c.state === 'sent') && now >= c.expiresAt) this.move(c, 'expired', 'its TTL passed before delivery', now);
    else if ((c.state === 'sent' || c.state === 'delivered') && c.sentAt !== undefined && now >= c.sentAt + c.timeoutMs) this.move(c, 'timed_out', undefined, now);
    else this.arm(c, now);
  }

  /** Counts by state of this instance's commands, for metrics and the gateway panel. */
  counts(): Record<CommandState, number> {
    const out: Record<CommandState, number> = { queued: 0, sent: 0, delivered: 0, acked: 0, failed: 0, expired: 0, timed_out: 0 };
    for (const c of this.byId.values()) if (this.mine(c)) out[c.state]++;
    return out;
  }

  /** A command another instance owns changed there: keep the copy for reads and the live view. */
  applyReplica(r: CommandRecord): void {
    if (r.owner === undefined || r.owner === this.instance) return;
    const c = this.byId.get(r.id);
    if (c && this.mine(c)) return;
    if (!c) {
      this.index(r);
    } else {
      const wasFinal = isFinal(c);
      Object.assign(c, r);
      if (isFinal(c) && !wasFinal) {
        this.unlist(this.pending, c);
        let done = this.finished.get(c.deviceId);
        if (!done) this.finished.set(c.deviceId, (done = []));
        done.push(c);
        this.trimFinished(c.deviceId, done);
      }
    }
    this.changed(this.byId.get(r.id) ?? r);
  }

  /** The owner no longer keeps this command. */
  forgetReplica(deviceId: string, commandId: string): void {
    const c = this.byId.get(commandId);
    if (!c || this.mine(c) || c.deviceId !== deviceId) return;
    this.byId.delete(c.id);
    if (c.idempotencyKey) this.byIdempotencyKey.delete(`${deviceId}\u0000${c.idempotencyKey}`);
    this.unlist(this.pending, c);
    this.unlist(this.finished, c);
  }

  private unlist(map: Map<string, CommandRecord[]>, c: CommandRecord): void {
    const list = map.get(c.deviceId);
    const i = list?.indexOf(c) ?? -1;
    if (i === -1) return;
    list!.splice(i, 1);
    if (list!.length === 0) map.delete(c.deviceId);
  }

  close(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.journal.close();
  }
}

function parsePayload(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
