/**
 * The device-session port every transport adapts to (WebSocket, embedded MQTT, the broker bridge):
 * admission (id, token, the duplicate-id policy, --max-devices, shutdown), presence with causes,
 * frames to ingest, and refusals — counted by code and transport, charged to the device when it
 * sent bad input, logged in aggregate, and answered with the error frame then the mapped close.
 * A transport keeps only its wire: uWS upgrades and close codes, aedes hooks and CONNACKs, the
 * bridge's subscription.
 */
import { CLOSE_CODES, encodeError } from '../../devices/codec/index.js';
import { DEVICE_ID_PATTERN, DISABLED_MESSAGE, type Authenticator, type RegistryEntry } from '../auth.js';
import type { DeviceLink, DeviceState, DeviceTable, OfflineCause } from '../devices.js';
import type { Ingest, IngestRefusal } from '../ingest.js';
import type { JsonTelemetry } from '../json/telemetry.js';
import type { Presence } from '../presence.js';
import type { RefusalLog } from './refusal-log.js';
import { Refusal, refusalSpec, type RefusalCode, type SessionTransport } from './refusals.js';

export interface SessionPolicy {
  maxDevices: number;
  duplicateId: 'replace' | 'reject';
}

/** Who knocked: what a transport knows before a device is admitted. */
export interface Peer {
  transport: SessionTransport;
  /** The id the peer claimed (unauthenticated until admitted). */
  device?: string | undefined;
  remote?: string | undefined;
}

export interface AdmitRequest {
  transport: SessionTransport;
  /** The device id the peer claims. */
  id: string;
  remote: string;
  /**
   * The token to check, or 'broker' when an external broker authenticated the device already
   * (bridge mode: the broker owns the connection, so duplicates and --max-devices are its business).
   */
  credentials: { token: string } | 'broker';
  /** Transport rules checked once the device is authentic (an MQTT will's topic, a connection already gone). */
  check?: () => [RefusalCode, string] | undefined;
}

/** Refusals by code and transport, read by /metrics at scrape time. */
export class RefusalCounts {
  private readonly byKey = new Map<string, { code: RefusalCode; transport: SessionTransport; n: number }>();

  count(code: RefusalCode, transport: SessionTransport): void {
    const key = code + '/' + transport;
    const c = this.byKey.get(key);
    if (c) c.n++;
    else this.byKey.set(key, { code, transport, n: 1 });
  }

  get(code: RefusalCode, transport: SessionTransport): number {
    return this.byKey.get(code + '/' + transport)?.n ?? 0;
  }

  entries(): IterableIterator<{ code: RefusalCode; transport: SessionTransport; n: number }> {
    return this.byKey.values();
  }
}

/**
 * Asked as a device's connection opens, before it becomes the device's connection: a promise when its
 * frames must wait (cluster/cluster.ts: the instance that held it until now has not yet said where
 * its frames were safe), undefined when they may go straight to ingest.
 */
export type FrameGate = (device: DeviceState) => Promise<void> | undefined;

/** Frames of one session kept while its gate is shut; over this the gate is given up (bounded memory). */
export const MAX_HELD_FRAMES = 4096;

/**
 * How a refusal ends a session: the port closes it, the transport closes it itself, it stays open,
 * or (a message bad in itself: the refusal table's `final`) the error frame goes out and it stays open.
 */
export type RefusalEnd = 'close' | 'closed-by-transport' | 'stay' | 'answer';

export class DeviceSessions {
  readonly refusals = new RefusalCounts();
  private stopping = false;
  private gate: FrameGate | undefined;
  /** Sessions whose frames waited at the gate, and those that gave up waiting (too many frames). */
  held = 0;
  heldOverflow = 0;

  constructor(
    private readonly devices: DeviceTable,
    private readonly auth: Authenticator,
    readonly ingest: Ingest,
    readonly presence: Presence,
    private readonly log: RefusalLog,
    private readonly policy: SessionPolicy,
    /** JSON telemetry (gateway/json/), for sessions whose transport carries it (MQTT `…/telemetry/json`). */
    readonly json?: JsonTelemetry,
  ) {}

  /**
   * A device that sends without a connection (JSON telemetry over HTTP): the same checks as an
   * admission (shutdown, id, token) without the connection rules, or why not (counted and logged).
   */
  identify(req: { transport: SessionTransport; id: string; remote: string; token: string }): DeviceState | Refusal {
    const peer: Peer = { transport: req.transport, device: req.id, remote: req.remote };
    if (this.stopping) return this.turnAway('SHUTTING_DOWN', 'the gateway is stopping; retry with backoff', peer);
    const result = this.auth.device(req.id, req.token);
    if (!result.ok) return this.turnAway(result.code, result.message, peer);
    return this.devices.getOrCreate(req.id, result.entry);
  }

  /** Lets a device in, or says why not (counted and logged). `link` becomes its connection once opened. */
  admit(req: AdmitRequest, link: DeviceLink): Session | Refusal {
    if (this.stopping) return this.refuseAdmission(req, 'SHUTTING_DOWN', 'the gateway is stopping; reconnect with backoff');
    if (!req.id) {
      const how = req.transport === 'ws' ? 'connect to /device?id=<deviceId>' : 'an empty client id needs a clean session [MQTT-3.1.3-8]';
      return this.refuseAdmission(req, 'DEVICE_ID_MISSING', how);
    }
    let entry: RegistryEntry | undefined;
    if (req.credentials === 'broker') {
      if (!DEVICE_ID_PATTERN.test(req.id)) return this.refuseAdmission(req, 'BAD_DEVICE_ID', 'the device id in the topic is not a valid id');
      entry = this.auth.entry(req.id);
      if (entry?.disabled) return this.refuseAdmission(req, 'DEVICE_DISABLED', DISABLED_MESSAGE);
    } else {
      const result = this.auth.device(req.id, req.credentials.token);
      if (!result.ok) return this.refuseAdmission(req, result.code, result.message);
      entry = result.entry;
    }
    const bad = req.check?.();
    if (bad) return this.refuseAdmission(req, bad[0], bad[1]);
    if (req.credentials !== 'broker') {
      if (this.devices.get(req.id)?.online) {
        if (this.policy.duplicateId === 'reject') {
          return this.refuseAdmission(req, 'DEVICE_ALREADY_CONNECTED', 'this device id is connected already (the gateway runs with --duplicate-id reject)');
        }
      } else if (this.devices.online >= this.policy.maxDevices) {
        return this.refuseAdmission(req, 'TOO_MANY_DEVICES', `the gateway holds its maximum of ${this.policy.maxDevices} connected devices (--max-devices); retry later`);
      }
    }
    return new Session(this.devices.getOrCreate(req.id, entry), link, this);
  }

  /** A refused admission, counted and logged (the peer is made only here: admissions come in storms). */
  private refuseAdmission(req: AdmitRequest, code: RefusalCode, message: string): Refusal {
    return this.turnAway(code, message, { transport: req.transport, device: req.id, remote: req.remote });
  }

  /** Sets the one gate every opening session asks (the cluster's device handover). */
  gateFrames(gate: FrameGate): void {
    if (this.gate) throw new Error('the session frame gate is set already');
    this.gate = gate;
  }

  /** @internal The gate's answer for a device whose connection opens. */
  gateFor(device: DeviceState): Promise<void> | undefined {
    return this.gate?.(device);
  }

  /** A refusal before any session exists (a bad CONNECT, bytes that are not MQTT, a failed TLS handshake): counts and logs it. */
  turnAway(code: RefusalCode, message: string, peer: Peer): Refusal {
    const r = new Refusal(code, message);
    this.ingest.stats.countError(code);
    this.record(r, peer);
    return r;
  }

  /**
   * Ends a device's connection held here because an operator said so (DEVICE_DISABLED,
   * DEVICE_DELETED): counted and logged as a refusal, the error frame when the code has one, then
   * the code's close. False when nothing was closed here: the device is offline, its connection
   * is another instance's (which hears of the change and closes it), or an external broker's
   * (then it is only marked offline, and its next message is refused).
   */
  evict(device: DeviceState, code: RefusalCode, message: string): boolean {
    const link = device.link;
    if (!device.online || link === undefined || link.instance !== undefined) return false;
    const r = new Refusal(code, message);
    this.record(r, { transport: link.shared ? 'bridge' : link.transport, device: device.id, remote: link.remoteAddress });
    if (r.spec.wire !== undefined) link.send(encodeError({ timestamp: Date.now() }, { code: r.spec.wire, message: message.slice(0, 1024) }));
    link.closingCause = 'kicked';
    if (link.shared) {
      // The external broker holds the connection: the device is offline to us, and its next message is refused at admission.
      this.presence.disconnect(device, link, 'kicked', code);
      return false;
    }
    link.close(r.spec.close ?? CLOSE_CODES.BAD_FRAME, code);
    return true;
  }

  /** The connections devices are online on at this instance (a transport's shutdown closes its own). */
  *links(): IterableIterator<DeviceLink> {
    for (const d of this.devices.all()) if (d.link !== undefined && d.link.instance === undefined) yield d.link;
  }

  /** From now on every admission is refused with SHUTTING_DOWN. */
  shutDown(): void {
    this.stopping = true;
  }

  /**
   * Refuses a request of a device that has no session (JSON telemetry over HTTP): counts it (against
   * the device when it is bad input) and logs it; the caller answers it.
   */
  refuseRequest(device: DeviceState, code: RefusalCode, message: string, peer: Peer): Refusal {
    const r = new Refusal(code, message);
    if (r.spec.input) {
      device.errors++;
      device.lastErrorCode = code;
    }
    this.ingest.stats.countError(code);
    this.record(r, peer);
    return r;
  }

  /** Counts a refusal by transport and logs it; the per-device and total error counts are the caller's (ingest's, for its refusals). */
  record(r: Refusal, peer: Peer): void {
    this.refusals.count(r.code, peer.transport);
    this.log.note({ code: r.code, transport: peer.transport, device: peer.device, remote: peer.remote, message: r.message, input: r.spec.input === true });
  }
}

/** A JSON body that came while the session's gate was shut, and the answer its transport waits for. */
interface HeldJson {
  json: Uint8Array;
  answer(safe: boolean): void;
}

/** Session.gate until the gate was asked (a per-session object for the answer would cost every idle connection). */
const UNASKED: unique symbol = Symbol('gate not asked');

/** One admitted device connection, from admission to its end. */
export class Session {
  /** The refusal that ended this session, shown as the device's offlineDetail. */
  private endedBy: RefusalCode | undefined;
  /** Copies of the frames (and JSON bodies) that came while the gate was shut, in order; undefined once it opened. */
  private held: (Uint8Array | HeldJson)[] | undefined;
  /** The gate's answer, asked once, before this connection replaces any other. */
  private gate: Promise<void> | undefined | typeof UNASKED = UNASKED;

  constructor(
    readonly device: DeviceState,
    readonly link: DeviceLink,
    private readonly port: DeviceSessions,
  ) {}

  /** Where the link says: an external broker's connections are the bridge's. */
  get transport(): SessionTransport {
    return this.link.shared ? 'bridge' : this.link.transport;
  }

  /** The connection is up: the device is online on it (an older connection is replaced). */
  open(at?: number): void {
    const wait = this.askGate();
    this.port.presence.connect(this.device, this.link, at);
    if (wait === undefined) return;
    this.held = [];
    this.port.held++;
    void wait.then(() => this.release());
  }

  private askGate(): Promise<void> | undefined {
    if (this.gate === UNASKED) this.gate = this.port.gateFor(this.device);
    return this.gate;
  }

  /** The gate opened: the frames that waited are taken, in order, then every new one directly. */
  private release(): void {
    const held = this.held;
    this.held = undefined;
    if (held === undefined) return;
    const now = Date.now();
    for (let i = 0; i < held.length; i++) {
      const item = held[i]!;
      let refused: boolean;
      if (item instanceof Uint8Array) refused = this.take(item, now) !== undefined;
      else {
        const r = this.takeJson(item.json, now);
        refused = r instanceof Refusal && !r.messageOnly;
        if (r instanceof Refusal) item.answer(r.messageOnly);
        else void r.then(item.answer);
      }
      if (refused) {
        // The session ended: JSON bodies after the refused one are not taken, and not acked.
        for (let j = i + 1; j < held.length; j++) if (!(held[j] instanceof Uint8Array)) (held[j] as HeldJson).answer(false);
        return;
      }
    }
  }

  /**
   * Replaces the device's current connection now, before the transport's own takeover closes it
   * without a word (aedes does that with a duplicate client id).
   */
  takeOver(): void {
    this.askGate();
    this.port.presence.replace(this.device, { transport: this.link.transport, remoteAddress: this.link.remoteAddress });
  }

  /** Takes one frame (bytes valid during the call only). A refused frame ends the session (error frame, close). */
  frame(bytes: Uint8Array, now: number): Refusal | undefined {
    if (this.held !== undefined) {
      if (this.held.length < MAX_HELD_FRAMES) {
        // Transports reuse their buffers once this returns.
        this.held.push(bytes.slice());
        return undefined;
      }
      this.port.heldOverflow++;
      this.release();
    }
    return this.take(bytes, now);
  }

  private take(bytes: Uint8Array, now: number): Refusal | undefined {
    const ir = this.port.ingest.handle(this.device, bytes, now);
    return ir === undefined ? undefined : this.ended(ir);
  }

  /**
   * Takes one JSON telemetry body (gateway/json/; bytes valid during the call only). A refused body
   * ends the session as a refused frame does. Otherwise resolves true once its readings are as safe
   * as an ack makes them (the MQTT PUBACK waits for that), or false when they were not in time
   * (ACK_TIMEOUT: the session ends, so the device resends).
   */
  json(bytes: Uint8Array, now: number): Refusal | Promise<boolean> {
    if (this.held !== undefined) {
      if (this.held.length < MAX_HELD_FRAMES) {
        const json = bytes.slice();
        return new Promise((answer) => this.held!.push({ json, answer }));
      }
      this.port.heldOverflow++;
      this.release();
    }
    return this.takeJson(bytes, now);
  }

  private takeJson(bytes: Uint8Array, now: number): Refusal | Promise<boolean> {
    const json = this.port.json;
    if (json === undefined) return this.refuse('MQTT_FOREIGN_TOPIC', 'this gateway takes no JSON telemetry on this transport');
    const t = json.take(this.device, bytes, now, this.transport === 'bridge' ? 'bridge' : 'mqtt');
    // Answered only when nothing of the body was taken: messages of an array taken before the bad
    // one are not safe yet, and a PUBACK must not come before they are.
    if ('refusal' in t) return t.accepted === 0 && refusalSpec(t.refusal.code).final === true ? this.answered(t.refusal) : this.ended(t.refusal);
    return t.safe.then((safe) => {
      if (!safe) this.refuse('ACK_TIMEOUT', 'the readings were taken but not confirmed stored within 20 s: reconnect and resend (with seq the resend is a duplicate)');
      return safe;
    });
  }

  /** Refuses one message of ingest (which charged the device already) with the error frame; the session goes on. */
  private answered(ir: IngestRefusal): Refusal {
    const r = new Refusal(ir.code, ir.message, true);
    this.port.record(r, this.peer());
    this.kick(r, 'answer', ir.epoch, ir.seq);
    return r;
  }

  /** Ends the session for a refusal of ingest (which charged the device and the totals already). */
  private ended(ir: IngestRefusal): Refusal {
    const r = new Refusal(ir.code, ir.message);
    this.port.record(r, this.peer());
    // The error frame names the refused frame (STORAGE_FULL, TIMESTAMP_OUT_OF_RANGE), so the device knows which one.
    this.kick(r, 'close', ir.epoch, ir.seq);
    return r;
  }

  /**
   * Refuses something the device did on this session: counts it (against the device when it is
   * bad input), logs it, and unless `end` is 'stay' ends the session with the error frame and the
   * mapped close ('closed-by-transport': the transport closes, or already has).
   */
  refuse(code: RefusalCode, message: string, end: RefusalEnd = 'close'): Refusal {
    const r = new Refusal(code, message);
    const d = this.device;
    if (r.spec.input) {
      d.errors++;
      d.lastErrorCode = code;
    }
    this.port.ingest.stats.countError(code);
    this.port.record(r, this.peer());
    this.kick(r, end);
    return r;
  }

  /** The connection ended: the device goes offline with `cause` (or why the gateway closed it). */
  end(cause: OfflineCause, detail?: string, closeCode?: number): void {
    this.port.presence.disconnect(this.device, this.link, cause, this.endedBy ?? detail, closeCode);
  }

  private kick(r: Refusal, end: RefusalEnd, epoch?: number, seq?: number): void {
    if (end === 'stay') return;
    const link = this.link;
    if ((end === 'close' || end === 'answer') && r.spec.wire !== undefined) {
      const h = epoch !== undefined && seq !== undefined ? { timestamp: Date.now(), epoch, seq } : { timestamp: Date.now() };
      link.send(encodeError(h, { code: r.spec.wire, message: r.message.slice(0, 1024) }));
    }
    if (end === 'answer') return;
    // An external broker's connection cannot be closed from here: the error frame is all.
    if (link.shared) return;
    link.closingCause = 'kicked';
    this.endedBy = r.code;
    if (end === 'close') link.close(r.spec.close ?? CLOSE_CODES.BAD_FRAME, r.code);
  }

  private peer(): Peer {
    return { transport: this.transport, device: this.device.id, remote: this.link.remoteAddress };
  }
}
