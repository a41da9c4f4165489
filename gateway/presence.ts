/**
 * Presence for every transport: a new connection of a device replaces an older one (on any
 * transport), and every disconnect is recorded with its cause and logged once.
 */
import { CLOSE_CODES, encodeError } from '../devices/codec/index.js';
import type { DeviceLink, DeviceState, DeviceTable, OfflineCause } from './devices.js';
import type { Logger } from './log.js';

export type PresenceListener = (device: DeviceState, link: DeviceLink) => void;

export class Presence {
  private readonly connected: PresenceListener[] = [];
  private readonly disconnected: PresenceListener[] = [];

  onConnect(l: PresenceListener): void {
    this.connected.push(l);
  }

  onDisconnect(l: PresenceListener): void {
    this.disconnected.push(l);
  }

  constructor(
    private readonly devices: DeviceTable,
    private readonly log: Logger,
  ) {}

  /**
   * Tells the device's current connection it is being replaced and closes it (newest wins, as MQTT
   * brokers do with a duplicate client id). Transports call this as early as they know a newcomer
   * is authentic, before their own takeover closes the old connection without a word.
   */
  replace(device: DeviceState, by: { transport: string; remoteAddress: string }): void {
    const old = device.link;
    if (!old || !device.online) return;
    const now = Date.now();
    // A connection another instance holds is closed by that instance when it hears of this one.
    if (old.instance === undefined) {
      old.closingCause = 'replaced';
      old.send(encodeError({ timestamp: now }, { code: 'REPLACED', message: 'the same device id connected again; this connection is replaced' }));
      old.close(CLOSE_CODES.REPLACED, 'REPLACED');
    }
    this.devices.markOffline(device, old, 'replaced', `by a ${by.transport} connection from ${by.remoteAddress}`, now);
    for (const l of this.disconnected) l(device, old);
  }

  /** Makes `link` the device's connection; a still-open older one is replaced. */
  connect(device: DeviceState, link: DeviceLink, at = Date.now()): void {
    this.replace(device, link);
    this.devices.markOnline(device, link, at);
    // The instance holding a connection logs it; the others only at debug. (No line object for a level that is off: connections come in storms.)
    const level = link.instance === undefined ? 'info' : 'debug';
    if (this.log.isLevelEnabled(level)) this.log[level]({ device: device.id, transport: link.transport, remote: link.remoteAddress }, 'device connected');
    for (const l of this.connected) l(device, link);
  }

  disconnect(device: DeviceState, link: DeviceLink, cause: OfflineCause, detail: string | undefined, closeCode?: number): void {
    if (this.devices.markOffline(device, link, link.closingCause ?? cause, detail, Date.now())) {
      this.log[link.instance === undefined ? 'info' : 'debug']({ device: device.id, transport: link.transport, cause: device.offlineCause, code: closeCode }, 'device disconnected');
      for (const l of this.disconnected) l(device, link);
    }
  }
}
