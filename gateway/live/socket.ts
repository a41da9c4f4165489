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
  /**
   * Sends a snapshot `build` makes, unless the client has its budget waiting already: then it goes
   * over budget now, the snapshot counts as missed and is not built, and the client gets a fresh
   * one with its `missed` message when it catches up (hub.ts recover). So asking again and again
   * cannot make the gateway build a snapshot per request. (The fleet's snapshot goes through the
   * hub, fleet-snapshot.ts, after the same check below.)
   */
  function sendBuilt(client: LiveClient, build: () => string): void {
    congestIfOver(client);
    if (client.congested) {
      client.missedDirect++;
      hub.dropped++;
      return;
    }
    hub.sendTo(client, build());
  }

  /** A client with its budget waiting already goes congested now, before anything is built for it. */
  function congestIfOver(client: LiveClient): void {
    if (!client.congested && client.conn.bufferedAmount() > hub.opts.budgetBytes) hub.checkBudgets(false);
  }

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
      // A stream named twice in one message is one subscription (and one snapshot).
      const streams = Array.isArray(msg?.streams) ? [...new Set<unknown>(msg.streams)] : undefined;
      if ((msg?.op !== 'subscribe' && msg?.op !== 'unsubscribe') || !streams || !streams.every((s) => typeof s === 'string')) {
        return void hub.sendTo(client, error('BAD_MESSAGE', 'expected {"op":"subscribe"|"unsubscribe","streams":[...]}'));
      }
      const resumes = msg.resume;
      if ((resumes !== undefined && (typeof resumes !== 'object' || resumes === null || Array.isArray(resumes))) || (msg.bootId !== undefined && typeof msg.bootId !== 'string')) {
        return void hub.sendTo(client, error('BAD_MESSAGE', '"resume" is an object {"device:<id>": <last seq applied>} and "bootId" the string of the hello message'));
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
        const resume = (resumes as Record<string, unknown> | undefined)?.[s];
        // A seq that no message has (a fraction, a negative) would be answered "ok" with nothing behind it.
        if (resume !== undefined && !(Number.isSafeInteger(resume) && (resume as number) >= 0)) {
          hub.sendTo(client, error('BAD_MESSAGE', `resume of "${s.slice(0, 200)}" must be the whole seq of the last message applied (0 for none); the stream was not subscribed`));
          continue;
        }
        // Its budget already waiting: congested first, so the fleet snapshot is not built now (it
        // comes with the `missed` message when the client catches up; sendBuilt's reason).
        if (s === 'fleet') congestIfOver(client);
        hub.subscribe(client, s);
        if (s === 'types') sendBuilt(client, () => hub.typesMessage());
        if (s === 'alarms') sendBuilt(client, () => hub.alarmSnapshot());
        if (s.startsWith('device:') && typeof resume === 'number') {
          const replay = hub.replay(s.slice(7), resume, msg.bootId as string | undefined);
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
