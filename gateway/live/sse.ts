/**
 * GET /api/live?device=<id>[&device=…][&alarms]: the same device messages as /live, as Server-Sent
 * Events, for curl -N and EventSource; with `alarms`, also `alarm` events (the open alarms first,
 * then every change). Resumes from Last-Event-ID; a client that cannot keep up skips messages
 * until it can, then gets one `missed` event.
 *
 * An event's id is where the client is in every device it follows, `<device>:<seq>[,<device>:<seq>…]@<bootId>`
 * (one device: the id of LIVE.md), because an EventSource sends back only the last id it saw: with
 * the last device's seq alone, the other devices' messages of the outage would be lost unsaid.
 */
import type { AlarmMessage, ResumeMessage, SseMissedMessage } from '../../devices/api/json.js';
import { DEVICE_ID_PATTERN } from '../auth.js';
import { ApiError } from '../errors.js';
import { requireGet, type RouteHandler } from '../http-api.js';
import { onlyParams } from '../query-params.js';
import type { Reply } from '../uws.js';
import type { LiveHub } from './hub.js';

interface SseClient {
  reply: Reply;
  congested: boolean;
  missed: number;
  /** Follows alarms (`?alarms`): after a gap it gets the open list again. */
  alarms: boolean;
  /** Per device of the query, the seq of the last message it got (or its stream's seq when it came): its event ids. */
  seqs: Map<string, number>;
}

const KEEPALIVE_MS = 15_000;
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' };

export class SseHub {
  private readonly byDevice = new Map<string, Set<SseClient>>();
  private readonly all = new Set<SseClient>();
  private readonly alarmClients = new Set<SseClient>();
  private readonly keepalive: NodeJS.Timeout;

  constructor(private readonly hub: LiveHub) {
    hub.onDeviceMessage((id, seq, json) => {
      const set = this.byDevice.get(id);
      if (set) for (const c of set) this.sendDevice(c, id, seq, json);
    });
    hub.onAlarm((a) => {
      if (this.alarmClients.size === 0) return;
      const text = `event: alarm\ndata: ${JSON.stringify({ type: 'alarm', full: false, alarms: [a] } satisfies AlarmMessage)}\n\n`;
      for (const c of this.alarmClients) this.send(c, text);
    });
    this.keepalive = setInterval(() => {
      // A congested client's connection is busy anyway; a skipped keepalive is no missed message.
      for (const c of this.all) if (!c.congested) this.send(c, ': keepalive\n\n');
    }, KEEPALIVE_MS);
  }

  /** A message a congested client does not get: told with its `missed` event. */
  private skip(c: SseClient): void {
    c.missed++;
    this.hub.dropped++;
  }

  /** A device message, its id saying where the client is in each of its devices. */
  private sendDevice(c: SseClient, id: string, seq: number, json: string): void {
    if (c.congested) return this.skip(c);
    c.seqs.set(id, seq);
    let at = '';
    for (const [device, n] of c.seqs) at += `${at ? ',' : ''}${device}:${n}`;
    this.send(c, `id: ${at}@${this.hub.bootId}\nevent: device\ndata: ${json}\n\n`);
  }

  private send(c: SseClient, text: string): void {
    if (c.congested) return this.skip(c);
    if (!c.reply.write(text)) {
      c.congested = true;
      c.reply.onWritable(() => {
        c.congested = false;
        if (c.missed > 0) {
          c.reply.write(`event: missed\ndata: ${JSON.stringify({ type: 'missed', count: c.missed } satisfies SseMissedMessage)}\n\n`);
          if (c.alarms) c.reply.write(this.alarmList());
        }
        c.missed = 0;
      });
    }
  }

  route(): RouteHandler {
    return (req, reply, s) => {
      if (!(s.length === 2 && s[0] === 'api' && s[1] === 'live')) return false;
      requireGet(req, s);
      onlyParams(req.query, ['device', 'alarms', 'lastEventId'], `${req.path} takes device, alarms, lastEventId`);
      // A device named twice is one stream (else its replay would come twice).
      const ids = [...new Set(req.query.getAll('device'))];
      const alarms = req.query.has('alarms');
      if ((ids.length === 0 && !alarms) || !ids.every((id) => DEVICE_ID_PATTERN.test(id))) {
        throw new ApiError(400, 'BAD_QUERY', 'name one or more devices, or ask for alarms: /api/live?device=<id>[&device=<id2>][&alarms]');
      }
      // HEAD: the headers a GET gets, and no stream (a body after them would corrupt a keep-alive connection).
      if (req.method === 'HEAD') {
        reply.send(200, SSE_HEADERS);
        return true;
      }
      const client: SseClient = { reply, congested: false, missed: 0, alarms, seqs: new Map() };
      this.all.add(client);
      reply.startStream(200, SSE_HEADERS);
      // EventSource polyfills that cannot set the header send the id as ?lastEventId=.
      const last = parseLastEventId(req.header('last-event-id') || (req.query.get('lastEventId') ?? ''));
      for (const id of ids) {
        let set = this.byDevice.get(id);
        if (!set) this.byDevice.set(id, (set = new Set()));
        set.add(client);
        this.hub.watchDevice(id);
        // From here on the client gets every message of the device: a reconnect resumes from this one.
        client.seqs.set(id, this.hub.streams.seqOf(id));
        const from = last?.seqs.get(id);
        if (from !== undefined) {
          const replay = this.hub.replay(id, from, last!.bootId);
          this.send(client, `event: resume\ndata: ${JSON.stringify({ type: 'resume', stream: `device:${id}`, from, status: replay ? 'ok' : 'too_old' } satisfies ResumeMessage)}\n\n`);
          for (const m of replay ?? []) this.sendDevice(client, id, (JSON.parse(m) as { seq: number }).seq, m);
        }
      }
      if (alarms) {
        this.alarmClients.add(client);
        this.send(client, this.alarmList());
      }
      this.send(client, ': connected\n\n');
      reply.onClose(() => {
        this.all.delete(client);
        this.alarmClients.delete(client);
        for (const id of ids) {
          this.byDevice.get(id)?.delete(client);
          if (this.byDevice.get(id)?.size === 0) this.byDevice.delete(id);
          this.hub.unwatchDevice(id);
        }
      });
      return true;
    };
  }

  /** The open alarms as one `alarm` event (`full`). */
  private alarmList(): string {
    return `event: alarm\ndata: ${JSON.stringify({ type: 'alarm', full: true, alarms: this.hub.alarmsOpen() } satisfies AlarmMessage)}\n\n`;
  }

  get clients(): number {
    return this.all.size;
  }

  close(): void {
    clearInterval(this.keepalive);
    for (const c of this.all) c.reply.end();
    this.all.clear();
    this.alarmClients.clear();
    this.byDevice.clear();
  }
}

/**
 * Last-Event-ID as this route writes it, `<device>:<seq>[,<device>:<seq>…][@<bootId>]` (device ids
 * have no "," or "@"; without "@<bootId>" the seqs are taken to be this process's); else undefined.
 */
function parseLastEventId(header: string): { seqs: Map<string, number>; bootId: string | undefined } | undefined {
  const at = header.lastIndexOf('@');
  const bootId = at === -1 ? undefined : header.slice(at + 1);
  if (bootId === '') return undefined;
  const seqs = new Map<string, number>();
  for (const part of (at === -1 ? header : header.slice(0, at)).split(',')) {
    const m = /^(.+):(\d{1,15})$/.exec(part);
    if (!m) return undefined;
    seqs.set(m[1]!, Number(m[2]));
  }
  return seqs.size > 0 ? { seqs, bootId } : undefined;
}
