/**
 * The /live WebSocket route: operator auth at upgrade (token, or session cookie from the gateway's
 * own origin), the subscription protocol of gateway/LIVE.md. A logout closes its session's sockets.
 */
import type { HelloMessage, LiveErrorMessage, ResumeMessage } from '../../devices/api/json.js';
import { DEVICE_ID_PATTERN } from '../auth.js';
import type { OperatorAccess } from '../login/access.js';
import { Connection, type SocketRoute, type UpgradeDecision } from '../uws.js';
import type { LiveClient, LiveHub } from './hub.js';

/** uWS's own cap on what waits for a /live client (the hub's budget is the working limit). */
const MAX_BACKPRESSURE = 512 * 1024 * 1024;

interface Data {
  client: LiveClient;
  /** The login session it was opened with (none for the operator token). */
  sessionId: string | undefined;
}

/** Close code for a /live socket whose session was logged out (do not reconnect: log in again). */
export const LIVE_CLOSE_LOGGED_OUT = 4410;

const STATIC_STREAMS = new Set(['fleet', 'stats', 'commands', 'types', 'alarms']);

function error(code: string, message: string): string {
  return JSON.stringify({ type: 'error', code, message } satisfies LiveErrorMessage);
}

export function liveSocketRoute(hub: LiveHub, access: OperatorAccess, maxMessageBytes = 64 * 1024): SocketRoute<Connection<Data>> {
  const bySession = new Map<string, Set<Connection<Data>>>();
  access.sessions.onRevoke((id) => {
    for (const conn of bySession.get(id) ?? []) conn.end(LIVE_CLOSE_LOGGED_OUT, 'logged out');
  });
  return {
    maxPayloadLength: maxMessageBytes,
    idleTimeoutSeconds: 60,
    // Over this uWS refuses a direct send (counted, but the client is not told): the hub's budget
    // check must act first. It lets a client's own fleet snapshot (~0.8 KB a device) wait on top of
    // its budget, and the delta that follows the snapshot is a direct send, so the cap leaves room
    // for a snapshot at any fleet size here (100,000 devices: ~80 MB).
    maxBackpressure: Math.max(hub.opts.budgetBytes * 4, MAX_BACKPRESSURE),

    upgrade(info): UpgradeDecision<Connection<Data>> {
      const who = access.upgrade(info);
      if ('refuse' in who) return { refuse: { status: who.refuse.status, body: JSON.stringify(who.refuse.toJSON()) } };
      const sessionId = who.ok.via === 'session' ? who.ok.session.id : undefined;
      // The connection is filled in at open().
      return { accept: new Connection<Data>(info.remoteAddress, { sessionId, client: { conn: undefined as unknown as LiveClient['conn'], streams: new Set(), congested: false, missedFrom: new Map(), missedDirect: 0 } }) };
    },

    open(conn: Connection<Data>) {
      const client = conn.data.client;
      client.conn = {
        send: (text) => conn.send(text, false),
        bufferedAmount: () => conn.bufferedAmount(),
        subscribe: (t) => conn.subscribe(t),
        unsubscribe: (t) => conn.unsubscribe(t),
        close: () => conn.end(1001, 'gateway shutting down'),
      };
      hub.clients.add(client);
      const sid = conn.data.sessionId;
      if (sid !== undefined) {
        let set = bySession.get(sid);
        if (!set) bySession.set(sid, (set = new Set()));
        set.add(conn);
      }
      conn.send(JSON.stringify({ type: 'hello', serverTime: Date.now(), bootId: hub.bootId, flushMs: hub.opts.flushMs, budgetBytes: hub.opts.budgetBytes } satisfies HelloMessage), false);
    },

    message(conn, bytes) {
      const client = conn.data.client;
      let msg: { op?: unknown; streams?: unknown; resume?: unknown; bootId?: unknown };
      try {
        msg = JSON.parse(Buffer.from(bytes).toString('utf8'));
      } catch {
        return void hub.sendTo(client, error('BAD_MESSAGE', 'messages are JSON objects such as {"op":"subscribe","streams":["fleet"]}'));
      }
      const streams = Array.isArray(msg?.streams) ? msg.streams : undefined;
      if ((msg?.op !== 'subscribe' && msg?.op !== 'unsubscribe') || !streams || !streams.every((s) => typeof s === 'string')) {
        return void hub.sendTo(client, error('BAD_MESSAGE', 'expected {"op":"subscribe"|"unsubscribe","streams":[...]}'));
      }
      for (const s of streams as string[]) {
        if (!STATIC_STREAMS.has(s) && !(s.startsWith('device:') && DEVICE_ID_PATTERN.test(s.slice(7)))) {
          hub.sendTo(client, error('UNKNOWN_STREAM', `no stream "${s.slice(0, 200)}" (fleet, stats, commands, types, alarms, device:<id>)`));
          continue;
        }
        if (msg.op === 'unsubscribe') {
          hub.unsubscribe(client, s);
          continue;
        }
        const resume = (msg.resume as Record<string, unknown> | undefined)?.[s];
        hub.subscribe(client, s);
        if (s === 'types') hub.sendTo(client, hub.typesMessage());
        if (s === 'alarms') hub.sendTo(client, hub.alarmSnapshot());
        if (s.startsWith('device:') && typeof resume === 'number') {
          const replay = hub.replay(s.slice(7), resume, typeof msg.bootId === 'string' ? msg.bootId : undefined);
          hub.sendTo(client, JSON.stringify({ type: 'resume', stream: s, from: resume, status: replay ? 'ok' : 'too_old' } satisfies ResumeMessage));
          for (const m of replay ?? []) hub.sendTo(client, m);
        }
      }
    },

    drain(conn) {
      const c = conn.data.client;
      if (c.congested) hub.checkBudgets();
    },

    close(conn) {
      const sid = conn.data.sessionId;
      if (sid !== undefined) {
        const set = bySession.get(sid);
        set?.delete(conn);
        if (set?.size === 0) bySession.delete(sid);
      }
      hub.remove(conn.data.client);
    },
  };
}
