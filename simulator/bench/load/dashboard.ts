/**
 * The one dashboard of each run. For the gateway: a /live client (operator token) subscribed either
 * as a user's browser is (`view: 'page'`: the fleet view plus one device page: `fleet`, `stats`,
 * `commands` and one `device:<id>`), or to everything as a stress (`view: 'all'`: the `device:<id>`
 * stream of every device too; LIVE.md has no wildcard). For the ws baseline: a client on /dashboard
 * that gets every frame as JSON. Throughput runs only count what arrives; latency runs parse the
 * messages for probe readings (in `device` messages' points and in the fleet view's last values).
 */
import type { Socket } from 'node:net';
import type { LatencyRecorder } from './latency.js';
import { controlHandler, maskedFrame, OPCODE, openWebSocket, ServerFrameReader } from '../ws-wire.js';

export interface DashboardTarget {
  host: string;
  port: number;
  kind: 'live' | 'ws-baseline';
  operatorToken?: string;
  deviceIds: readonly string[];
  /** Gateway only: what the client follows (default 'all'). */
  view?: 'all' | 'page';
}

const POINTS_1 = Buffer.from('"points":{"1":[');
const CHANNEL_1 = Buffer.from('{"channel":1,');
const VALUE = Buffer.from('"value":');
/** A device summary's channel-1 last value in a `fleet` message (channels are ordered by number). */
const LAST_1 = Buffer.from('"last":{"1":{"value":');

/** /live takes messages up to 64 KiB: subscribe in chunks. */
const STREAMS_PER_MESSAGE = 1000;

export class Dashboard {
  readonly reader: ServerFrameReader;
  private recvAt = 0;

  private constructor(
    readonly socket: Socket,
    rest: Buffer,
    private readonly kind: DashboardTarget['kind'],
    private readonly latency: LatencyRecorder | undefined,
  ) {
    const control = controlHandler(socket);
    this.reader = new ServerFrameReader(latency !== undefined ? Infinity : -1, (op, payload) => {
      if (control(op, payload)) return;
      if (op === OPCODE.text) this.onText(payload);
    });
    socket.on('data', (chunk: Buffer) => {
      this.recvAt = performance.now();
      this.reader.feed(chunk);
    });
    socket.on('error', () => {});
    if (rest.length > 0) this.reader.feed(rest);
  }

  static async open(t: DashboardTarget, latency?: LatencyRecorder): Promise<Dashboard> {
    const live = t.kind === 'live';
    const u = await openWebSocket({
      host: t.host,
      port: t.port,
      path: live ? '/live' : '/dashboard',
      headers: live ? { Authorization: `Bearer ${t.operatorToken ?? ''}` } : {},
    });
    const d = new Dashboard(u.socket, u.rest, t.kind, latency);
    if (live) {
      const followed = t.view === 'page' ? t.deviceIds.slice(0, 1) : t.deviceIds;
      const streams = ['fleet', 'stats', 'commands', ...followed.map((id) => `device:${id}`)];
      for (let i = 0; i < streams.length; i += STREAMS_PER_MESSAGE) {
        const msg = JSON.stringify({ op: 'subscribe', streams: streams.slice(i, i + STREAMS_PER_MESSAGE) });
        u.socket.write(maskedFrame(OPCODE.text, Buffer.from(msg)));
      }
    }
    return d;
  }

  /**
   * Finds the channel-1 values without a full JSON.parse (the dashboard shares a core with the
   * sender, so it must stay cheap): gateway device messages carry `"points":{"1":[[t,v],…]`, the
   * baseline's frames `{"channel":1,"type":"f32","value":v`.
   */
  private onText(payload: Buffer): void {
    const lat = this.latency;
    if (!lat) return;
    const at = this.recvAt;
    if (this.kind === 'live') {
      if (payload.length < 16) return;
      const type = payload.toString('latin1', 0, 16);
      if (type === '{"type":"fleet",') return this.fleetValues(payload, at);
      if (type !== '{"type":"device"') return;
      let p = payload.indexOf(POINTS_1);
      if (p === -1) return;
      p += POINTS_1.length;
      // [[t,v],[t,v]]: after each ',' that follows a time comes the value.
      const end = payload.indexOf(']]', p);
      const text = payload.toString('latin1', p, end + 1);
      for (const pair of text.split('],')) {
        const v = Number(pair.slice(pair.indexOf(',') + 1).replace(/[\[\]]/g, ''));
        if (Number.isFinite(v)) lat.received(v, at);
      }
      return;
    }
    let p = payload.indexOf(CHANNEL_1);
    if (p === -1) return;
    p = payload.indexOf(VALUE, p);
    if (p === -1) return;
    p += VALUE.length;
    let end = p;
    while (end < payload.length && payload[end] !== 44 && payload[end] !== 125) end++;
    const v = Number(payload.toString('latin1', p, end));
    if (Number.isFinite(v)) lat.received(v, at);
  }

  /** Every device summary's channel-1 value in a fleet snapshot or delta. */
  private fleetValues(payload: Buffer, at: number): void {
    for (let p = payload.indexOf(LAST_1); p !== -1; p = payload.indexOf(LAST_1, p)) {
      p += LAST_1.length;
      let end = p;
      while (end < payload.length && payload[end] !== 44 && payload[end] !== 125) end++;
      const v = Number(payload.toString('latin1', p, end));
      if (Number.isFinite(v)) this.latency!.received(v, at);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
