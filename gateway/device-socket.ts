/**
 * The /device WebSocket route: the session port (session/sessions.ts) over uWS. What is left here
 * is the wire: the upgrade's query and headers, HTTP refusals, binary messages, and turning uWS
 * close codes into offline causes. Knows uWS only through SocketConnection (uws.ts).
 */
import { MAX_DEVICE_FRAME_BYTES } from '../devices/codec/index.js';
import { bearerToken } from './auth.js';
import type { DeviceLink, OfflineCause } from './devices.js';
import { Refusal } from './session/refusals.js';
import type { DeviceSessions, Session } from './session/sessions.js';
import { SocketConnection, type SocketRoute, type UpgradeDecision } from './uws.js';

export interface DeviceSocketOptions {
  maxFrameBytes: number;
  idleTimeoutSeconds: number;
  deviceSendBudget: number;
}

/** A device's WebSocket: the socket, its device link and its session in one object (idle connections are many). */
class WsLink extends SocketConnection implements DeviceLink {
  closingCause: OfflineCause | undefined;
  /** Set right after admission, before the socket opens. */
  session!: Session;
  get transport(): 'ws' {
    return 'ws';
  }
  close(closeCode: number, reason: string): void {
    this.end(closeCode, reason);
  }
}

// uWS's close reason when a message exceeds maxPayloadLength.
const UWS_TOO_BIG = 'Received too big message';

function refused(r: Refusal): UpgradeDecision<WsLink> {
  const status = r.spec.http ?? 400;
  return { refuse: { status, headers: status === 401 ? { 'www-authenticate': 'Bearer realm="device"' } : {}, body: r.body() } };
}

export function deviceSocketRoute(
  sessions: DeviceSessions,
  opts: DeviceSocketOptions,
): SocketRoute<WsLink> & { closeAll(code: number, reason: string, cause: OfflineCause): void } {
  return {
    // Every message up to the largest frame v1 can carry (and up to 4x the limit) is read, so it gets a
    // FRAME_TOO_LARGE error frame naming it and close 4401 (issue 15 point 8): a device must not take a
    // bare 1006 for "reconnect and resend". Past that it is no v1 frame at all: uWS drops the
    // connection at once (1006), still counted as FRAME_TOO_LARGE.
    maxPayloadLength: Math.max(opts.maxFrameBytes * 4, MAX_DEVICE_FRAME_BYTES),
    idleTimeoutSeconds: opts.idleTimeoutSeconds,
    maxBackpressure: opts.deviceSendBudget,

    upgrade(info) {
      const link = new WsLink(info.remoteAddress);
      const token = bearerToken(info.header('authorization'), info);
      const s = sessions.admit({ transport: 'ws', id: info.param('id') ?? '', remote: info.remoteAddress, credentials: { token } }, link);
      if (s instanceof Refusal) return refused(s);
      link.session = s;
      return { accept: link };
    },

    open(conn) {
      conn.session.open();
    },

    activity(conn) {
      conn.session.device.lastSeen = Date.now();
    },

    message(conn, bytes, binary) {
      const { session } = conn;
      if (!binary) session.refuse('NOT_BINARY', 'text messages are not frames: send binary WebSocket messages');
      else session.frame(bytes, Date.now());
    },

    close(conn, code, reason) {
      const { session } = conn;
      if (code === 1009 || (code === 1006 && reason === UWS_TOO_BIG)) {
        session.refuse('FRAME_TOO_LARGE', 'frame far over --max-frame-bytes', 'closed-by-transport');
        session.end('kicked', undefined, code);
        return;
      }
      let cause: OfflineCause;
      if (code === 1000 || code === 1001 || code === 1005) cause = 'closed';
      else if (Date.now() - session.device.lastSeen >= opts.idleTimeoutSeconds * 1000 - 1000) cause = 'timeout';
      else cause = 'connection_lost';
      session.end(cause, reason || undefined, code);
    },

    // Every open device socket is its device's link (a replaced one was closed when it was replaced):
    // found through the devices, not a set of sockets that would cost every connection an entry.
    closeAll(code, reason, cause) {
      for (const link of sessions.links()) {
        if (!(link instanceof WsLink)) continue;
        link.closingCause = cause;
        link.end(code, reason);
      }
    },
  };
}
