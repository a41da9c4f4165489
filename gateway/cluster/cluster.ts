/**
 * Makes one gateway instance part of a cluster over the backbone (README "Many cores, many
 * machines"). Each instance owns the devices connected to it: it alone decodes, dedupes, stores and
 * acks their frames; no frame travels to another instance. What the others need comes by kind:
 *
 *   presence (here)             who holds each device, at once; a device that leaves carries where its
 *                               frames were safe (its cursor) to whoever it connects to next
 *   summaries (fleet-view.ts)   counters and last values, at most once per --cluster-summary-ms
 *   live (live-relay.ts)        coalesced points of a device, only while another instance's clients follow it
 *   history (remote-history.ts) with the memory store, asked of the other instances on request
 *   commands (here)             owned by the instance whose API accepted it: only that one drives its
 *                               lifecycle; frames for it travel to the holding instance, results back
 *
 * The newest connection of a device wins across instances. A device that moves keeps exactly-once:
 * the new holder keeps its frames waiting (the session's frame gate, bounded) until the old holder,
 * which settles what it ingested first, has said where they were safe.
 */
import { decodeFrame, FrameType, type CommandResultFrame } from '../../devices/codec/index.js';
import type { AckLedger } from '../acks.js';
import type { Alarms } from '../alarms/alarms.js';
import type { Authenticator } from '../auth.js';
import type { CommandService } from '../commands/commands.js';
import type { DeviceLink, DeviceState, DeviceTable } from '../devices.js';
import type { Ingest } from '../ingest.js';
import type { Logger } from '../log.js';
import type { Presence } from '../presence.js';
import type { Storage } from '../storage/storage.js';
import type { DeviceSessions } from '../session/sessions.js';
import type { LiveHub } from '../live/hub.js';
import type { Backbone, PresenceMessage } from './backbone.js';
import { AlarmRelay } from './alarm-relay.js';
import { FleetView } from './fleet-view.js';
import { LiveRelay } from './live-relay.js';
import { RemoteHistory, type HeldSpan } from './remote-history.js';

/** Longest a device's frames wait for the instance that held it before to say where they were safe. */
export const HANDOVER_TIMEOUT_MS = 3000;
/** Longest the old holder waits for storage to settle a leaving device's frames before it tells its cursor. */
const SETTLE_BEFORE_HANDOVER_MS = 2000;

/** A device connected to another instance: frames for it go there over the backbone. */
class RemoteLink implements DeviceLink {
  readonly remoteAddress: string;
  constructor(
    private readonly backbone: Backbone,
    private readonly deviceId: string,
    readonly instance: string,
    readonly transport: 'ws' | 'mqtt',
  ) {
    this.remoteAddress = `via gateway ${instance}`;
  }
  send(bytes: Uint8Array): 'sent' | 'queued' | 'dropped' {
    return this.backbone.deliver(this.instance, this.deviceId, bytes) ? 'sent' : 'dropped';
  }
  /** The holding instance closes its own connection when it hears of a newer one. */
  close(): void {}
  bufferedAmount(): number {
    return 0;
  }
}

export interface ClusterDeps {
  devices: DeviceTable;
  auth: Authenticator;
  ingest: Ingest;
  /** Where each device's frames are safe: told to the others when a device leaves, adopted from them. */
  acks: Pick<AckLedger, 'position' | 'adopt' | 'flush' | 'newestTicket'>;
  storage: Pick<Storage, 'whenDurable' | 'history' | 'kind'>;
  presence: Presence;
  sessions: DeviceSessions;
  commands: CommandService;
  live: LiveHub;
  /** Alarms: this instance's published, the others' shown (alarm-relay.ts). */
  alarms?: Alarms;
  /** Summaries of this instance's devices go out at most this often (ms). */
  summaryMs: number;
  log: Logger;
}

export class Cluster {
  /** Instances known to be gone: their devices are offline, whatever retained presence says. */
  private readonly gone = new Set<string>();
  /** The instances that held each device, and when (from presence; for history with the memory store). */
  private readonly holders = new Map<string, Map<string, HeldSpan>>();
  /** Devices whose frames wait here for their previous holder's cursor: device → that instance and the release. */
  private readonly handovers = new Map<string, { from: string; release(): void }>();
  readonly fleet: FleetView;
  readonly relay: LiveRelay;
  readonly alarms: AlarmRelay | undefined;
  /** With the memory store: history asked of every instance (undefined with InfluxDB: one database). */
  readonly history: RemoteHistory | undefined;
  /** Moves that went on without the previous holder's cursor (it did not say in time). */
  handoverTimeouts = 0;
  /** Offline presences still waiting for storage to settle (shutdown waits for them). */
  private readonly leaving = new Set<Promise<void>>();

  constructor(
    readonly backbone: Backbone,
    private readonly d: ClusterDeps,
  ) {
    this.fleet = new FleetView(backbone, d.devices, (id) => this.device(id), d.summaryMs, d.log);
    this.relay = new LiveRelay(backbone, d.live, d.devices);
    this.alarms = d.alarms ? new AlarmRelay(backbone, d.alarms, d.log) : undefined;
    this.history = d.storage.kind === 'memory' ? new RemoteHistory(backbone, d.storage, (id) => this.holders.get(id), d.log) : undefined;
  }

  /** Wires local events out and remote events in; call before backbone.start(). */
  attach(): void {
    const { backbone, d } = this;
    if (d.commands.instance !== backbone.instance) throw new Error(`the command service runs as instance ${d.commands.instance}, the backbone as ${backbone.instance}`);
    d.commands.onRelay((id, frame) => backbone.relayResult(id, frame));
    d.commands.onChange((c) => {
      if (c.owner === backbone.instance) backbone.publishCommand(c);
    });
    d.commands.onForget((c) => backbone.forgetCommand(c.deviceId, c.id));
    d.presence.onConnect((device, link) => {
      if (link.instance !== undefined || link.shared) return;
      this.noteHeld(device.id, backbone.instance, true, device.connectedAt);
      this.publishHeld(device, link);
    });
    d.presence.onDisconnect((device, link) => {
      if (link.instance !== undefined || link.shared) return;
      this.noteHeld(device.id, backbone.instance, false, device.disconnectedAt);
      const p = this.publishLeft(device, link).finally(() => this.leaving.delete(p));
      this.leaving.add(p);
    });
    d.sessions.gateFrames((device) => this.handover(device));
    this.fleet.listen({ ingest: d.ingest, presence: d.presence });
    d.live.listen({ fleet: this.fleet });
    this.relay.attach();
    this.alarms?.attach();
    this.history?.attach();

    backbone.onPresence((id, msg, stale) => (stale ? this.onStalePresence(id, msg) : this.onPresence(this.device(id), msg)));
    backbone.onInstance((instance, online, cause) => this.onInstance(instance, online, cause));
    backbone.onCommand((c) => d.commands.applyReplica(c));
    backbone.onCommandGone((deviceId, id) => d.commands.forgetReplica(deviceId, id));
    backbone.onDeliver((id, frame) => this.onDeliver(id, frame));
    backbone.onResult((id, frame) => {
      const device = d.devices.get(id);
      const f = decodeFrame(frame);
      if (device && !(f instanceof Error) && f.type === FrameType.CommandResult) d.commands.onResult(device, f as CommandResultFrame, true);
    });
  }

  /** Keeps when each instance held a device: its first connection, and when it left. */
  private noteHeld(id: string, instance: string, online: boolean, at: number): void {
    let m = this.holders.get(id);
    if (!m) this.holders.set(id, (m = new Map()));
    const span = m.get(instance);
    if (!span) m.set(instance, { first: at, until: online ? undefined : at });
    else {
      if (at < span.first) span.first = at;
      span.until = online ? undefined : Math.max(span.until ?? 0, at);
    }
  }

  /** Starts the periodic work (summaries); after backbone.start(). */
  start(): void {
    this.fleet.start();
    this.relay.announce();
    this.alarms?.announce();
  }

  /** Resolves once every device that left has its offline presence published (bounded by the settle wait). */
  async settled(): Promise<void> {
    await Promise.all([...this.leaving]);
  }

  /** For /metrics. */
  counters() {
    const b = this.backbone;
    return { resultsRelayed: b.resultsRelayed, sent: b.sent, unsent: b.unsent, handoverTimeouts: this.handoverTimeouts, historyUnavailable: this.history?.unavailable ?? 0 };
  }

  /** Sends what is pending (the last summary); before backbone.close(). */
  stop(): void {
    this.fleet.stop();
    this.relay.close();
    for (const h of this.handovers.values()) h.release();
  }

  /**
   * A device left this instance: once storage settled what it sent here (bounded), its offline
   * presence tells every instance where its frames were safe. The instance it connects to next keeps
   * its frames waiting for this message, so nothing acked or stored here is taken twice there.
   */
  private async publishLeft(device: DeviceState, link: DeviceLink): Promise<void> {
    const { d, backbone } = this;
    const at = device.disconnectedAt;
    const cause = device.offlineCause;
    const detail = device.offlineDetail;
    if (await d.storage.whenDurable(d.acks.newestTicket, SETTLE_BEFORE_HANDOVER_MS)) d.acks.flush(Date.now());
    // It reconnected here meanwhile: its online presence (published since) is the news, not this.
    const now = device.link;
    if (device.online && now !== undefined && now.instance === undefined && !now.shared) return;
    const msg: PresenceMessage = { instance: backbone.instance, online: false, transport: link.transport, remoteAddress: link.remoteAddress, at };
    if (cause) msg.cause = cause;
    if (detail) msg.detail = detail;
    const cursor = d.acks.position(device);
    if (cursor) msg.cursor = cursor;
    backbone.publishPresence(device.id, msg);
  }

  /**
   * The session gate: a device that connects here while another instance still holds it (as far as
   * this one knows) keeps its frames waiting until that instance says where they were safe, at most
   * HANDOVER_TIMEOUT_MS. Without it, frames the other stored but had not acked would come back here
   * as new.
   */
  private handover(device: DeviceState): Promise<void> | undefined {
    const link = device.link;
    const from = device.online ? link?.instance : undefined;
    if (from === undefined || this.gone.has(from) || this.handovers.has(device.id)) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.handoverTimeouts++;
        this.d.log.warn({ device: device.id, from }, `gateway instance ${from} did not say within ${HANDOVER_TIMEOUT_MS} ms where this device's frames were safe; taking its frames now (a resent frame that instance stored may count twice)`);
        release();
      }, HANDOVER_TIMEOUT_MS);
      const release = () => {
        clearTimeout(timer);
        if (this.handovers.get(device.id)?.release === release) this.handovers.delete(device.id);
        resolve();
      };
      this.handovers.set(device.id, { from, release });
    });
  }

  private publishHeld(device: DeviceState, link: DeviceLink): void {
    this.backbone.publishPresence(device.id, { instance: this.backbone.instance, online: true, transport: link.transport, remoteAddress: link.remoteAddress, at: device.connectedAt });
  }

  private device(id: string): DeviceState {
    return this.d.devices.getOrCreate(id, this.d.auth.entry(id));
  }

  private onPresence(device: DeviceState, msg: PresenceMessage): void {
    const link = device.link;
    const heldHere = device.online && link !== undefined && link.instance === undefined && !link.shared;
    this.noteHeld(device.id, msg.instance, msg.online, msg.at);
    // The retained presence must say where the device is: another instance's older news (its
    // replaced connection going offline, say) came after ours, so say it again.
    if (heldHere && (!msg.online || device.connectedAt > msg.at)) this.publishHeld(device, link!);
    if (msg.online) {
      if (this.gone.has(msg.instance)) return;
      // Ours is newer: the other instance closes its connection when it hears of ours.
      if (heldHere && device.connectedAt > msg.at) return;
      if (device.online && link?.instance === msg.instance && device.connectedAt === msg.at) return;
      this.d.presence.connect(device, new RemoteLink(this.backbone, device.id, msg.instance, msg.transport), msg.at);
      return;
    }
    if (device.online && link?.instance === msg.instance) {
      this.d.presence.disconnect(device, link, msg.cause ?? 'connection_lost', msg.detail);
    } else {
      this.d.devices.noteOffline(device, msg.at, msg.cause, msg.detail);
    }
    // A device whose frames wait here for this news takes the cursor into its dedupe window too.
    const waiting = this.handovers.get(device.id);
    const handedOver = waiting !== undefined && waiting.from === msg.instance;
    if (msg.cursor) this.d.acks.adopt(device, msg.cursor, heldHere && !handedOver);
    if (handedOver) waiting.release();
  }

  /**
   * The broker still says a device is online here, from before this instance restarted under the
   * same --instance-id: it is not (yet); say so, or instances joining later would believe it.
   */
  private onStalePresence(id: string, msg: PresenceMessage): void {
    const device = this.device(id);
    // This instance held it before its restart: what it kept in memory then is gone.
    this.noteHeld(id, msg.instance, false, msg.at);
    if (msg.cursor) this.d.acks.adopt(device, msg.cursor, false);
    if (!msg.online || device.online) return;
    this.backbone.publishPresence(id, { ...msg, online: false, at: Date.now(), cause: 'connection_lost', detail: `gateway instance ${msg.instance} restarted` });
  }

  private onInstance(instance: string, online: boolean, cause: string | undefined): void {
    if (online) {
      this.gone.delete(instance);
      return;
    }
    this.gone.add(instance);
    for (const [id, h] of this.handovers) if (h.from === instance) this.handovers.get(id)?.release();
    let n = 0;
    for (const device of this.d.devices.all()) {
      const link = device.link;
      if (device.online && link?.instance === instance) {
        this.d.presence.disconnect(device, link, cause === 'shutdown' ? 'shutdown' : 'connection_lost', `gateway instance ${instance} went away`);
        n++;
      }
    }
    // A planned stop is news; one that was not is a problem to look into.
    this.d.log[cause === 'shutdown' ? 'info' : 'warn']({ instance, cause, devices: n }, 'a gateway instance left the cluster; its devices are offline until they reconnect (to any instance)');
  }

  /** A frame for a device this instance holds, from the instance owning a command. */
  private onDeliver(id: string, frame: Uint8Array): void {
    const device = this.d.devices.get(id);
    const link = device?.link;
    if (!device?.online || !link || link.instance !== undefined) {
      this.d.log.debug({ device: id }, 'a frame for a device no longer held here was dropped; its owner requeues on the presence change');
      return;
    }
    if (link.publishReliable) link.publishReliable(frame, () => {});
    else link.send(frame);
  }
}

