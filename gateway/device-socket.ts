/**
 * The /device WebSocket route: authenticates the upgrade, enforces the connection limits and the
 * duplicate-id policy, feeds binary messages to ingest, and turns every close into presence with a
 * cause. Knows uWS only through the Connection interface.
 */
import { closeCodeFor, encodeError, type ErrorCode } from '../devices/codec/index.js';
import { bearerToken, type Authenticator } from './auth.js';
import type { DeviceLink, DeviceState, DeviceTable, OfflineCause } from './devices.js';
import type { Ingest } from './ingest.js';
import type { Logger } from './log.js';
import type { Presence } from './presence.js';
import type { Connection, SocketRoute, UpgradeDecision } from './uws.js';

export interface DeviceSocketOptions {
  maxFrameBytes: number;
  maxDevices: number;
  duplicateId: 'replace' | 'reject';
  idleTimeoutSeconds: number;
  deviceSendBudget: number;
  /** At most one log line per device per this many ms for repeated bad input. */
  errorLogIntervalMs: number;
}

interface SocketData {
  device: DeviceState;
  link: WsLink;
}

class WsLink implements DeviceLink {
  readonly transport = 'ws';
  closingCause: OfflineCause | undefined;
  conn: Connection<SocketData> | undefined;
  constructor(readonly remoteAddress: string) {}
  send(bytes: Uint8Array): 'sent' | 'queued' | 'dropped' {
    return this.conn ? this.conn.send(bytes, true) : 'dropped';
  }
  close(closeCode: number, reason: string): void {
    this.conn?.end(closeCode, reason);
  }
  bufferedAmount(): number {
    return this.conn ? this.conn.bufferedAmount() : 0;
  }
}

// uWS's close reason when a message exceeds maxPayloadLength.
const UWS_TOO_BIG = 'Received too big message';

function refusal(status: number, code: string, message: string): UpgradeDecision<SocketData> {
  return { refuse: { status, headers: status === 401 ? { 'www-authenticate': 'Bearer realm="device"' } : {}, body: JSON.stringify({ error: { code, message } }) } };
}

export function deviceSocketRoute(
  devices: DeviceTable,
  auth: Authenticator,
  ingest: Ingest,
  presence: Presence,
  log: Logger,
  opts: DeviceSocketOptions,
): SocketRoute<SocketData> & { closeAll(code: number, reason: string, cause: OfflineCause): void } {
  const live = new Set<Connection<SocketData>>();

  function kick(conn: Connection<SocketData>, code: ErrorCode, message: string, cause: OfflineCause, frame?: { epoch?: number; seq?: number }): void {
    const { device, link } = conn.data;
    const now = Date.now();
    // STORAGE_FULL is the gateway's condition, logged in aggregate by storage.
    if (code !== 'STORAGE_FULL' && now - device.lastErrorLoggedAt >= opts.errorLogIntervalMs) {
      device.lastErrorLoggedAt = now;
      log.warn({ device: device.id, code, remote: conn.remoteAddress }, `device sent bad input and is disconnected: ${message}. Fix the device's encoder; see the error codes in devices/PROTOCOL.md`);
    }
    conn.send(encodeError({ timestamp: now, epoch: frame?.epoch, seq: frame?.seq }, { code, message: message.slice(0, 1024) }), true);
    link.closingCause = cause;
    conn.end(closeCodeFor(code), code);
  }

  return {
    // Frames a bit over the limit get a FRAME_TOO_LARGE error frame; over 4x the limit uWS drops the
    // connection at once (the device sees 1006), which is still counted as FRAME_TOO_LARGE.
    maxPayloadLength: opts.maxFrameBytes * 4,
    idleTimeoutSeconds: opts.idleTimeoutSeconds,
    maxBackpressure: opts.deviceSendBudget,

    upgrade(info) {
      const id = info.query.get('id') ?? '';
      if (!id) return refusal(400, 'DEVICE_ID_MISSING', 'connect to /device?id=<deviceId>');
      const token = bearerToken(info.header('authorization'), info.query);
      const result = auth.device(id, token);
      if (!result.ok) {
        log.info({ device: id.slice(0, 128), remote: info.remoteAddress, code: result.code }, 'device refused at upgrade: ' + result.message);
        return refusal(result.code === 'BAD_DEVICE_ID' ? 400 : 401, result.code, result.message);
      }
      const existing = devices.get(id);
      if (existing?.online) {
        if (opts.duplicateId === 'reject') {
          return refusal(409, 'DEVICE_ALREADY_CONNECTED', 'this device id is connected already (the gateway runs with --duplicate-id reject)');
        }
      } else if (devices.online >= opts.maxDevices) {
        return refusal(503, 'TOO_MANY_DEVICES', `the gateway holds its maximum of ${opts.maxDevices} connected devices (--max-devices); retry later`);
      }
      const device = devices.getOrCreate(id, result.entry);
      return { accept: { device, link: new WsLink(info.remoteAddress) } };
    },

    open(conn) {
      const { device, link } = conn.data;
      link.conn = conn;
      live.add(conn);
      presence.connect(device, link);
    },

    activity(conn) {
      conn.data.device.lastSeen = Date.now();
    },

    message(conn, bytes, binary) {
      const { device } = conn.data;
      if (!binary) {
        const r = ingest.refuse(device, 'NOT_BINARY', 'text messages are not frames: send binary WebSocket messages');
        kick(conn, r.code, r.message, 'kicked');
        return;
      }
      const r = ingest.handle(device, bytes, Date.now());
      if (r) kick(conn, r.code, r.message, 'kicked', r);
    },

    close(conn, code, reason) {
      live.delete(conn);
      const { device, link } = conn.data;
      const now = Date.now();
      let cause: OfflineCause;
      let detail: string | undefined = reason || undefined;
      if (code === 1009 || (code === 1006 && reason === UWS_TOO_BIG)) {
        ingest.refuse(device, 'FRAME_TOO_LARGE', 'frame far over --max-frame-bytes');
        cause = 'kicked';
        detail = 'FRAME_TOO_LARGE';
      } else if (code === 1000 || code === 1001 || code === 1005) cause = 'closed';
      else if (now - device.lastSeen >= opts.idleTimeoutSeconds * 1000 - 1000) cause = 'timeout';
      else cause = 'connection_lost';
      presence.disconnect(device, link, cause, detail, code);
    },

    closeAll(code, reason, cause) {
      for (const conn of live) {
        conn.data.link.closingCause = cause;
        conn.end(code, reason);
      }
    },
  };
}
