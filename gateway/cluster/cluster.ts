/**
 * Makes one gateway instance part of a cluster over the backbone: what happens here (device
 * connections, ingested frames, command changes) is published; what happens on the other instances
 * is applied here, so any instance shows every device live and can command a device on any other.
 *
 * Rules: a device is held by the instance it is connected to; the newest connection wins across
 * instances. Telemetry is ingested, stored and acked once, by the instance that received it; the
 * others apply it to their device table and live views (and to their in-memory history). A command
 * is owned by the instance whose API accepted it: only that one drives its lifecycle; frames for it
 * travel to the holding instance, and results travel back.
 */
import { decodeFrame, FrameType, type CommandResultFrame } from '../../devices/codec/index.js';
import type { AckLedger } from '../acks.js';
import type { Authenticator } from '../auth.js';
import type { CommandService } from '../commands/commands.js';
import type { DeviceLink, DeviceState, DeviceTable } from '../devices.js';
import type { Ingest } from '../ingest.js';
import type { Logger } from '../log.js';
import type { Presence } from '../presence.js';
import type { Backbone, PresenceMessage } from './backbone.js';

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
  acks: Pick<AckLedger, 'position' | 'adopt'>;
  presence: Presence;
  commands: CommandService;
  /** Apply other instances' frames to local storage too (in-memory history: each instance keeps its own). */
  storeReplicas: boolean;
  log: Logger;
}

export class Cluster {
  /** Instances known to be gone: their devices are offline, whatever retained presence says. */
  private readonly gone = new Set<string>();

  constructor(
    readonly backbone: Backbone,
    private readonly d: ClusterDeps,
  ) {}

  /** Wires local events out and remote events in; call before backbone.start(). */
  attach(): void {
    const { backbone, d } = this;
    if (d.commands.instance !== backbone.instance) throw new Error(`the command service runs as instance ${d.commands.instance}, the backbone as ${backbone.instance}`);
    d.commands.onRelay((id, frame) => backbone.relayResult(id, frame));
    d.commands.onChange((c) => {
      if (c.owner === backbone.instance) backbone.publishCommand(c);
    });
    d.commands.onForget((c) => backbone.forgetCommand(c.deviceId, c.id));
    d.ingest.onIngested((device, _h, _ticket, bytes) => backbone.replicate(device.id, bytes, device.link?.shared === true));
    d.presence.onConnect((device, link) => {
      if (link.instance === undefined && !link.shared) this.publishHeld(device, link);
    });
    d.presence.onDisconnect((device, link) => {
      if (link.instance !== undefined || link.shared) return;
      const msg: PresenceMessage = { instance: backbone.instance, online: false, transport: link.transport, remoteAddress: link.remoteAddress, at: device.disconnectedAt };
      if (device.offlineCause) msg.cause = device.offlineCause;
      if (device.offlineDetail) msg.detail = device.offlineDetail;
      const cursor = d.acks.position(device);
      if (cursor) msg.cursor = cursor;
      backbone.publishPresence(device.id, msg);
    });

    backbone.onTelemetry((id, frame, shared) => d.ingest.replica(this.device(id), frame, Date.now(), d.storeReplicas, !shared));
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

  private publishHeld(device: DeviceState, link: DeviceLink): void {
    this.backbone.publishPresence(device.id, { instance: this.backbone.instance, online: true, transport: link.transport, remoteAddress: link.remoteAddress, at: device.connectedAt });
  }

  private device(id: string): DeviceState {
    return this.d.devices.getOrCreate(id, this.d.auth.entry(id));
  }

  private onPresence(device: DeviceState, msg: PresenceMessage): void {
    const link = device.link;
    const heldHere = device.online && link !== undefined && link.instance === undefined && !link.shared;
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
    if (msg.cursor) this.d.acks.adopt(device, msg.cursor, heldHere);
  }

  /**
   * The broker still says a device is online here, from before this instance restarted under the
   * same --instance-id: it is not (yet); say so, or instances joining later would believe it.
   */
  private onStalePresence(id: string, msg: PresenceMessage): void {
    const device = this.device(id);
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

