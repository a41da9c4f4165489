/**
 * GET /api/live?device=<id>[&device=…][&alarms]: the same device messages as /live, as Server-Sent
 * Events, for curl -N and EventSource; with `alarms`, also `alarm` events (the open alarms first,
 * then every change). Resumes from Last-Event-ID; a client that cannot keep up skips messages
 * until it can, then gets one `missed` event.
 */
import type { AlarmMessage, ResumeMessage, SseMissedMessage } from '../../devices/api/json.js';
import { DEVICE_ID_PATTERN } from '../auth.js';
import { ApiError } from '../errors.js';
import { requireGet, type RouteHandler } from '../http-api.js';
import type { Reply } from '../uws.js';
import type { LiveHub } from './hub.js';

interface SseClient {
  reply: Reply;
  congested: boolean;
  missed: number;
  /** Follows alarms (`?alarms`): after a gap it gets the open list again. */
  alarms: boolean;
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
      if (set) for (const c of set) this.send(c, `id: ${id}:${seq}@${this.hub.bootId}\nevent: device\ndata: ${json}\n\n`);
    });
    hub.onAlarm((a) => {
      if (this.alarmClients.size === 0) return;
      const text = `event: alarm\ndata: ${JSON.stringify({ type: 'alarm', full: false, alarms: [a] } satisfies AlarmMessage)}\n\n`;
      for (const c of this.alarmClients) this.send(c, text);
    });
    this.keepalive = setInterval(() => {
      for (const c of this.all) this.send(c, ': keepalive\n\n');
    }, KEEPALIVE_MS);
  }

  private send(c: SseClient, text: string): void {
    if (c.congested) {
      c.missed++;
      this.hub.dropped++;
      return;
    }
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
      requireGet(req);
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
      const client: SseClient = { reply, congested: false, missed: 0, alarms };
      this.all.add(client);
      reply.startStream(200, SSE_HEADERS);
      // Last-Event-ID is "<device>:<seq>@<bootId>" of the last message the client applied (device
      // ids have no "@"); without "@<bootId>" the seq is taken to be this process's.
      const last = /^(.+):(\d+)(?:@([^@]+))?$/.exec(req.header('last-event-id'));
      for (const id of ids) {
        let set = this.byDevice.get(id);
        if (!set) this.byDevice.set(id, (set = new Set()));
        set.add(client);
        this.hub.watchDevice(id);
        if (last && last[1] === id) {
          const replay = this.hub.replay(id, Number(last[2]), last[3]);
          this.send(client, `event: resume\ndata: ${JSON.stringify({ type: 'resume', stream: `device:${id}`, from: Number(last[2]), status: replay ? 'ok' : 'too_old' } satisfies ResumeMessage)}\n\n`);
          for (const m of replay ?? []) {
            const seq = (JSON.parse(m) as { seq: number }).seq;
            this.send(client, `id: ${id}:${seq}@${this.hub.bootId}\nevent: device\ndata: ${m}\n\n`);
          }
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
