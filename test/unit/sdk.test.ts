import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeFrame } from '../../devices/codec/decode.js';
import { encodeAck, encodeCommand, encodeError, encodeTelemetry } from '../../devices/codec/encode.js';
import { FrameError } from '../../devices/codec/errors.js';
import { CommandStatus, FrameFlag, FrameType, type CommandResultFrame, type TelemetryFrame } from '../../devices/codec/types.js';
import {
  Backoff,
  DEFAULTS,
  DeviceClient,
  DeviceError,
  Outbox,
  deviceUrl,
  nextSeq,
  seqAtOrBefore,
  type DeviceClientEvents,
  type DeviceClientOptions,
  type DisconnectInfo,
  type TransportFactory,
  type TransportHandlers,
} from '../../devices/sdk/index.js';

const TOKEN = 'secret-token-1';

// ---------------------------------------------------------------------------------------------
// Teardown and waiting: every resource registers its cleanup; every wait is bounded.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function nextEvent<K extends keyof DeviceClientEvents>(client: DeviceClient, event: K, ms = 3000): Promise<DeviceClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for '${event}'`)), ms);
    const listener = (...args: DeviceClientEvents[K]): void => {
      clearTimeout(timer);
      resolve(args);
    };
    client.once(event, listener as never);
  });
}

/** Proves something does NOT happen: a short, bounded pause. */
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// A small fake gateway: checks the bearer token in the upgrade, decodes frames, acks after a delay.

interface GatewayOptions {
  ackDelayMs?: number;
  ack?: boolean;
  /** HTTP status to refuse upgrade number n (1-based) with, or undefined to accept it. */
  refuse?: (n: number) => number | undefined;
  onConnection?: (ws: WebSocket, n: number) => void;
  /** Called for each telemetry frame; `k` counts frames on this connection from 1. */
  onTelemetry?: (ws: WebSocket, frame: TelemetryFrame, k: number) => void;
}

interface Gateway {
  url: string;
  upgrades: number;
  connections: number;
  requests: { url: string; authorization: string | undefined }[];
  telemetry: TelemetryFrame[];
  results: CommandResultFrame[];
  /** Command results received, one list per connection. */
  resultsByConnection: CommandResultFrame[][];
  /** Open connections. */
  sockets: Set<WebSocket>;
  seen: Set<number>;
  /** Telemetry seqs received, one list per connection. */
  seqsByConnection: number[][];
  closeCodes: number[];
}

async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const gw: Gateway = {
    url: '',
    upgrades: 0,
    connections: 0,
    requests: [],
    telemetry: [],
    results: [],
    resultsByConnection: [],
    sockets: new Set(),
    seen: new Set(),
    seqsByConnection: [],
    closeCodes: [],
  };
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, cb) => {
      gw.upgrades++;
      gw.requests.push({ url: info.req.url ?? '', authorization: info.req.headers.authorization });
      if (info.req.headers.authorization !== `Bearer ${TOKEN}`) return cb(false, 401, 'Unauthorized');
      const status = opts.refuse?.(gw.upgrades);
      if (status !== undefined) return cb(false, status);
      cb(true);
    },
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  gw.url = `ws://127.0.0.1:${address.port}`;
  wss.on('connection', (ws) => {
    gw.connections++;
    const seqs: number[] = [];
    gw.seqsByConnection.push(seqs);
    const results: CommandResultFrame[] = [];
    gw.resultsByConnection.push(results);
    gw.sockets.add(ws);
    let k = 0;
    ws.on('close', (code) => {
      gw.sockets.delete(ws);
      gw.closeCodes.push(code);
    });
    ws.on('message', (data: Buffer) => {
      const f = decodeFrame(new Uint8Array(data));
      if (f instanceof FrameError) throw f;
      if (f.type === FrameType.CommandResult) {
        gw.results.push(f);
        results.push(f);
      }
      if (f.type !== FrameType.Telemetry) return;
      gw.telemetry.push(f);
      gw.seen.add(f.seq);
      seqs.push(f.seq);
      opts.onTelemetry?.(ws, f, ++k);
      if (opts.ack === false) return;
      const ack = encodeAck({ epoch: f.epoch, seq: f.seq, timestamp: Date.now() });
      const t = setTimeout(() => {
        timers.delete(t);
        if (ws.readyState === ws.OPEN) ws.send(ack);
      }, opts.ackDelayMs ?? 0);
      timers.add(t);
    });
    opts.onConnection?.(ws, gw.connections);
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  );
  return gw;
}

/** A client with test-friendly defaults, closed after the test. */
function makeClient(opts: Partial<DeviceClientOptions> & { url: string }): DeviceClient {
  const client = new DeviceClient({
    deviceId: 'sensor-1',
    token: TOKEN,
    backoffInitialMs: 10,
    backoffMaxMs: 50,
    connectTimeoutMs: 2000,
    closeTimeoutMs: 300,
    ...opts,
  });
  cleanups.push(() => client.close());
  return client;
}

function collect<K extends keyof DeviceClientEvents>(client: DeviceClient, event: K): DeviceClientEvents[K][0][] {
  const out: DeviceClientEvents[K][0][] = [];
  client.on(event, ((arg: DeviceClientEvents[K][0]) => out.push(arg)) as never);
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('DeviceClient options', () => {
  it('validates options with errors that name the option', () => {
    const base = { url: 'ws://127.0.0.1:1', deviceId: 'd1', token: TOKEN };
    expect(() => new DeviceClient({ ...base, url: 'http://127.0.0.1' })).toThrow(/"url"/);
    expect(() => new DeviceClient({ ...base, url: 'not a url' })).toThrow(/"url"/);
    expect(() => new DeviceClient({ ...base, deviceId: 'a/b' })).toThrow(/"deviceId"/);
    expect(() => new DeviceClient({ ...base, token: '' })).toThrow(/"token"/);
    expect(() => new DeviceClient({ ...base, token: 'has space' })).toThrow(/"token"/);
    expect(() => new DeviceClient({ ...base, token: 'has space' })).not.toThrow(/has space/);
    expect(() => new DeviceClient({ ...base, batchMs: -1 })).toThrow(/"batchMs"/);
    expect(() => new DeviceClient({ ...base, maxReadingsPerFrame: 70000 })).toThrow(/"maxReadingsPerFrame"/);
    expect(() => new DeviceClient({ ...base, whenFull: 'block' as never })).toThrow(/"whenFull"/);
    expect(() => new DeviceClient({ ...base, epoch: 0 })).toThrow(/"epoch"/);
    expect(() => new DeviceClient({ ...base, backoffInitialMs: 500, backoffMaxMs: 100 })).toThrow(/"backoffMaxMs"/);
    expect(DEFAULTS).toMatchObject({ batchMs: 20, maxReadingsPerFrame: 256, maxUnackedFrames: 10000, whenFull: 'drop-oldest', closeTimeoutMs: 5000 });
  });

  it('checks keptFrames and maxFrameBytes, naming the option', () => {
    const base = { url: 'ws://127.0.0.1:1', deviceId: 'd1', token: TOKEN, epoch: 9 };
    const kept = (epoch: number, seq: number) => encodeTelemetry({ epoch, seq, timestamp: 1 }, [{ channel: 0, value: seq }]);
    expect(() => new DeviceClient({ ...base, keptFrames: 'x' as never })).toThrow(/"keptFrames"/);
    expect(() => new DeviceClient({ ...base, keptFrames: [new Uint8Array(3)] })).toThrow(/"keptFrames".*index 0/);
    expect(() => new DeviceClient({ ...base, keptFrames: [kept(9, 0)] })).toThrow(/"keptFrames".*epoch 9/);
    expect(() => new DeviceClient({ ...base, keptFrames: [kept(8, 2), kept(8, 1)] })).toThrow(/"keptFrames".*seq order/);
    expect(() => new DeviceClient({ ...base, maxFrameBytes: 35 })).toThrow(/"maxFrameBytes"/);
    expect(() => new DeviceClient({ ...base, maxFrameBytes: 917_513 })).toThrow(/"maxFrameBytes"/);
    const c = new DeviceClient({ ...base, keptFrames: [kept(8, 1), kept(7, 5), kept(8, 2)] });
    expect(c.stats.unacked).toBe(3);
    // Kept per epoch, in the order the epochs first appear.
    expect(c.unackedFrames().map((f) => decodeFrame(f) as { epoch: number; seq: number }).map((f) => [f.epoch, f.seq])).toEqual([
      [8, 1],
      [8, 2],
      [7, 5],
    ]);
  });

  it('picks a random non-zero u32 epoch per instance', () => {
    const a = new DeviceClient({ url: 'ws://127.0.0.1:1', deviceId: 'd1', token: TOKEN });
    const b = new DeviceClient({ url: 'ws://127.0.0.1:1', deviceId: 'd1', token: TOKEN });
    expect(a.epoch).not.toBe(b.epoch);
    for (const e of [a.epoch, b.epoch]) expect(Number.isInteger(e) && e > 0 && e <= 0xffffffff).toBe(true);
  });

  it('builds /device?id= URLs and keeps the token out of them', async () => {
    expect(deviceUrl('ws://h:1', 'x')).toBe('ws://h:1/device?id=x');
    expect(deviceUrl('wss://h/', 'x')).toBe('wss://h/device?id=x');
    expect(deviceUrl('ws://h/custom/path', 'x')).toBe('ws://h/custom/path?id=x');
    const gw = await startGateway();
    const client = makeClient({ url: gw.url });
    await client.connect();
    expect(gw.requests).toEqual([{ url: '/device?id=sensor-1', authorization: `Bearer ${TOKEN}` }]);
  });
});

describe('DeviceClient telemetry', () => {
  it('batches readings sent within batchMs into one frame with offsets', async () => {
    const gw = await startGateway();
    const client = makeClient({ url: gw.url, batchMs: 30 });
    await client.connect();
    const t = 1_700_000_000_000;
    client.send([{ channel: 1, value: 21.5, type: 'f32' }, { channel: 2, value: true }], t);
    client.send({ channel: 3, value: -7, type: 'i32' }, t + 5);
    client.send({ channel: 4, value: 0.1 }, t - 3);
    expect(client.stats.pendingReadings).toBe(4);
    await waitFor(() => gw.telemetry.length === 1, 'one frame');
    const f = gw.telemetry[0]!;
    expect(f).toMatchObject({ seq: 0, epoch: client.epoch, timestamp: t, flags: 0 });
    expect(f.readings).toEqual([
      { channel: 1, type: 'f32', value: 21.5, offsetMs: 0 },
      { channel: 2, type: 'bool', value: true, offsetMs: 0 },
      { channel: 3, type: 'i32', value: -7, offsetMs: 5 },
      { channel: 4, type: 'f64', value: 0.1, offsetMs: -3 },
    ]);
    await pause(50);
    expect(gw.telemetry).toHaveLength(1);
  });

  it('seals a frame at maxReadingsPerFrame and checks readings in send()', async () => {
    const gw = await startGateway();
    const client = makeClient({ url: gw.url, batchMs: 0, maxReadingsPerFrame: 2 });
    await client.connect();
    client.send([1, 2, 3, 4, 5].map((v) => ({ channel: 9, value: v })));
    await waitFor(() => gw.telemetry.length === 3, 'three frames');
    expect(gw.telemetry.map((f) => [f.seq, f.readings.length])).toEqual([[0, 2], [1, 2], [2, 1]]);
    expect(() => client.send({ channel: 256, value: 1 })).toThrow(RangeError);
    expect(() => client.send({ channel: 1, value: 1.5, type: 'i32' })).toThrow(RangeError);
    expect(() => client.send({ channel: 1, value: 'x' as never })).toThrow();
    expect(() => client.send({ channel: 1, value: 1 }, 1.5)).toThrow(RangeError);
    expect(client.stats.pendingReadings).toBe(0);
  });

  it('releases frames on cumulative acks', async () => {
    const gw = await startGateway({ ackDelayMs: 5 });
    const client = makeClient({ url: gw.url, maxReadingsPerFrame: 1 });
    const acked = collect(client, 'acked');
    await client.connect();
    for (let i = 0; i < 10; i++) client.send({ channel: 1, value: i });
    expect(client.stats).toMatchObject({ sent: 10, unacked: 10 });
    await waitFor(() => client.stats.unacked === 0, 'all acked');
    expect(client.stats).toMatchObject({ sent: 10, acked: 10, resent: 0, dropped: 0, reconnects: 0, unacked: 0 });
    expect(acked.reduce((n, a) => n + a.frames, 0)).toBe(10);
    expect(acked.at(-1)?.seq).toBe(9);
  });

  it('reconnects after the gateway drops the connection and resends every unacked frame', async () => {
    const gw = await startGateway({
      ackDelayMs: 2,
      onTelemetry: (ws, _f, k) => {
        if (gw.connections === 1 && k === 20) ws.terminate();
      },
    });
    const client = makeClient({ url: gw.url, maxReadingsPerFrame: 1, maxUnackedFrames: 1000 });
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    for (let i = 0; i < 200; i++) client.send({ channel: 1, value: i });
    await waitFor(() => client.stats.unacked === 0, 'every frame acked', 5000);
    for (let s = 0; s < 200; s++) expect(gw.seen.has(s)).toBe(true);
    expect(gw.connections).toBe(2);
    expect(disconnects).toHaveLength(1);
    expect(disconnects[0]!.willReconnect).toBe(true);
    const stats = client.stats;
    expect(stats).toMatchObject({ sent: 200, acked: 200, dropped: 0, reconnects: 1, unacked: 0 });
    expect(stats.resent).toBeGreaterThan(0);
    // The second connection starts at the oldest unacked frame and goes on in order, without holes.
    const [first, second] = gw.seqsByConnection as [number[], number[]];
    expect(first.slice(0, 20)).toEqual([...Array(20).keys()]);
    expect(second[0]).toBeLessThanOrEqual(20);
    expect(second).toEqual([...Array(200 - second[0]!).keys()].map((i) => i + second[0]!));
    // All 200 went out on the first connection, so everything on the second one is a resend.
    expect(stats.resent).toBe(second.length);
  });

  it('keeps readings sent while disconnected and writes them on connect', async () => {
    const gw = await startGateway();
    const client = makeClient({ url: gw.url, batchMs: 0 });
    client.send({ channel: 1, value: 1 });
    await waitFor(() => client.stats.unacked === 1, 'a sealed frame');
    await client.connect();
    await waitFor(() => client.stats.unacked === 0, 'the frame acked');
    expect(client.stats).toMatchObject({ sent: 1, resent: 0, acked: 1 });
  });

  it('wraps seq from 0xFFFFFFFF to 0', async () => {
    const gw = await startGateway();
    const client = makeClient({ url: gw.url, maxReadingsPerFrame: 1, initialSeq: 0xfffffffe });
    await client.connect();
    for (let i = 0; i < 3; i++) client.send({ channel: 1, value: i });
    await waitFor(() => client.stats.unacked === 0, 'all acked');
    expect(gw.telemetry.map((f) => f.seq)).toEqual([0xfffffffe, 0xffffffff, 0]);
    expect(client.stats.acked).toBe(3);
  });
});

describe('DeviceClient range acks (several gateways on one shared subscription)', () => {
  /** A client that has sent `n` one-reading frames to a gateway that does not ack by itself. */
  async function sentFrames(n: number, opts: Partial<DeviceClientOptions> = {}) {
    const gw = await startGateway({ ack: false });
    const client = makeClient({ url: gw.url, maxReadingsPerFrame: 1, ...opts });
    const acked = collect(client, 'acked');
    await client.connect();
    for (let i = 0; i < n; i++) client.send({ channel: 1, value: i });
    await waitFor(() => gw.telemetry.length === n, `${n} frames at the gateway`);
    /** Sends an ack (a range ack firstSeq..seq when `first` is given) on the open connection and waits until the client has read it. */
    const ack = async (seq: number, first?: number, epoch = client.epoch): Promise<void> => {
      await waitFor(() => gw.sockets.size === 1 && client.connected, 'an open connection');
      const [ws] = gw.sockets;
      ws!.send(encodeAck({ epoch, seq, timestamp: Date.now() }, first));
      // The client reads frames in order: once it answers a command sent after the ack, it has read the ack.
      const probe = `probe-${gw.results.length}`;
      ws!.send(encodeCommand({ timestamp: Date.now() }, { commandId: probe, name: 'probe' }));
      await waitFor(() => gw.results.some((r) => r.commandId === probe), 'the client to read the ack');
    };
    return { gw, client, acked, ack };
  }

  it('releases every frame exactly once from out-of-order range acks of two gateways, across the seq wrap', async () => {
    const start = 0xfffffffb; // seqs fffffffb … ffffffff, 0 … 4
    const seq = (k: number): number => (start + k) >>> 0;
    const { client, acked, ack } = await sentFrames(10, { initialSeq: start });
    // Gateway A took frames 0–2 and 5, gateway B took 3–4 and 6–9.
    await ack(seq(9), seq(6)); // B
    expect(acked).toEqual([]);
    expect(client.stats).toMatchObject({ acked: 4, unacked: 6 });
    await ack(seq(9), seq(0), client.epoch === 1 ? 2 : 1); // another epoch: ignored
    expect(client.stats).toMatchObject({ acked: 4, unacked: 6 });
    await ack(seq(2), seq(0)); // A
    expect(acked).toEqual([{ seq: seq(2), frames: 3, epoch: client.epoch }]);
    await ack(seq(4), seq(3)); // B
    expect(acked).toEqual([{ seq: seq(2), frames: 3, epoch: client.epoch }, { seq: seq(4), frames: 2, epoch: client.epoch }]);
    expect(client.stats).toMatchObject({ acked: 9, unacked: 1 });
    await ack(seq(5), seq(5)); // A: the hole closes, 5 and the range B acked first leave together
    expect(acked.at(-1)).toEqual({ seq: seq(9), frames: 5, epoch: client.epoch });
    // Repeats (a redelivered range ack, a cumulative ack over it all) change nothing.
    await ack(seq(9), seq(6));
    await ack(seq(9));
    expect(acked.reduce((n, a) => n + a.frames, 0)).toBe(10);
    expect(acked).toHaveLength(3);
    expect(client.stats).toMatchObject({ sent: 10, acked: 10, unacked: 0, resent: 0 });
  });

  it('a range ack in the middle releases nothing at the head until the head is acked', async () => {
    const { client, acked, ack } = await sentFrames(6);
    await ack(3, 2);
    expect(acked).toEqual([]);
    expect(client.stats).toMatchObject({ acked: 2, unacked: 4 });
    await ack(0); // cumulative: only frame 0; frame 1 still holds 2 and 3 back
    expect(acked).toEqual([{ seq: 0, frames: 1, epoch: client.epoch }]);
    await ack(1); // cumulative: 1, and behind it the range-acked 2 and 3
    expect(acked.at(-1)).toEqual({ seq: 3, frames: 3, epoch: client.epoch });
    expect(client.stats).toMatchObject({ acked: 4, unacked: 2 });
    await ack(5);
    expect(acked.at(-1)).toEqual({ seq: 5, frames: 2, epoch: client.epoch });
    expect(client.stats).toMatchObject({ sent: 6, acked: 6, unacked: 0 });
  });

  it('after a reconnect resends only the frames no ack covered', async () => {
    const { gw, client, acked, ack } = await sentFrames(6);
    await ack(2, 1);
    await ack(4, 4);
    expect(client.stats).toMatchObject({ acked: 3, unacked: 3 });
    const reopened = nextEvent(client, 'connected');
    for (const ws of [...gw.sockets]) ws.terminate();
    await reopened;
    await waitFor(() => gw.seqsByConnection[1]?.length === 3, 'the resends');
    await pause(20);
    expect(gw.seqsByConnection[1]).toEqual([0, 3, 5]);
    expect(client.stats).toMatchObject({ sent: 6, resent: 3, reconnects: 1 });
    await ack(5);
    expect(acked).toEqual([{ seq: 5, frames: 6, epoch: client.epoch }]);
    expect(client.stats).toMatchObject({ acked: 6, unacked: 0 });
  });
});

describe('DeviceClient when the outbox is full', () => {
  it("'drop-oldest' drops, counts, and flags the new oldest frame with GapBefore", async () => {
    const gw = await startGateway();
    const client = makeClient({ url: gw.url, maxReadingsPerFrame: 1, maxUnackedFrames: 3 });
    const dropped = collect(client, 'dropped');
    for (let i = 0; i < 5; i++) client.send({ channel: 1, value: i });
    expect(client.stats).toMatchObject({ dropped: 2, unacked: 3 });
    expect(dropped.reduce((n, d) => n + d.frames, 0)).toBe(2);
    await client.connect();
    await waitFor(() => client.stats.unacked === 0, 'all acked');
    expect(gw.telemetry.map((f) => [f.seq, f.flags & FrameFlag.GapBefore])).toEqual([
      [2, FrameFlag.GapBefore],
      [3, 0],
      [4, 0],
    ]);
    expect(client.stats).toMatchObject({ sent: 3, acked: 3, dropped: 2 });
  });

  it("'reject' throws BUFFER_FULL and takes nothing from a refused call", () => {
    const client = makeClient({ url: 'ws://127.0.0.1:1', maxReadingsPerFrame: 2, maxUnackedFrames: 2, whenFull: 'reject' });
    const r = { channel: 1, value: 1 };
    expect(() => client.send([r, r, r, r, r])).toThrow(expect.objectContaining({ code: 'BUFFER_FULL' }));
    expect(client.stats.pendingReadings).toBe(0);
    client.send([r, r, r]);
    client.send(r);
    expect(client.stats).toMatchObject({ unacked: 2, pendingReadings: 0 });
    let err: unknown;
    try {
      client.send(r);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('BUFFER_FULL');
    expect(client.stats).toMatchObject({ unacked: 2, pendingReadings: 0, dropped: 0 });
  });
});

describe('DeviceClient connection failures', () => {
  it('rejects connect() with UNAUTHORIZED on HTTP 401 and does not retry', async () => {
    const gw = await startGateway();
    const client = makeClient({ url: gw.url, token: 'wrong-token' });
    const errors = collect(client, 'error');
    const disconnects = collect(client, 'disconnected');
    await expect(client.connect()).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401, closeCode: undefined });
    await pause(100); // backoffInitialMs is 10: a retry would have happened by now
    expect(gw.upgrades).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
    expect(errors[0]!.message).toBe('the gateway did not authorize device "sensor-1" (HTTP 401); not reconnecting');
    expect(disconnects).toEqual([{ code: 401, reason: 'HTTP 401', willReconnect: false }]);
  });

  it('retries HTTP 503 with backoff until the gateway accepts', async () => {
    const gw = await startGateway({ refuse: (n) => (n <= 2 ? 503 : undefined) });
    const client = makeClient({ url: gw.url });
    const errors = collect(client, 'error');
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    expect(gw.upgrades).toBe(3);
    expect(errors.map((e) => [e.code, e.status])).toEqual([
      ['CONNECT_FAILED', 503],
      ['CONNECT_FAILED', 503],
    ]);
    expect(disconnects.map((d) => [d.code, d.willReconnect])).toEqual([
      [503, true],
      [503, true],
    ]);
    expect(client.stats.reconnects).toBe(0);
  });

  it('reports the gateway error frame and stops on close code 4400', async () => {
    const gw = await startGateway({
      ack: false,
      onTelemetry: (ws) => {
        ws.send(encodeError({ timestamp: Date.now() }, { code: 'FRAME_TOO_LARGE', message: 'frame is too large' }));
        ws.close(4400, 'bad frame');
      },
    });
    const client = makeClient({ url: gw.url, batchMs: 0 });
    const errors = collect(client, 'error');
    await client.connect();
    const gone = nextEvent(client, 'disconnected');
    client.send({ channel: 1, value: 1 });
    const [info] = await gone;
    expect(info).toEqual<DisconnectInfo>({ code: 4400, reason: 'bad frame', willReconnect: false });
    expect(errors.map((e) => e.code)).toEqual(['FRAME_TOO_LARGE', 'CONNECTION_REJECTED']);
    expect(errors[0]!.message).toBe('frame is too large');
    expect(errors[1]).toMatchObject({ closeCode: 4400, cause: errors[0] });
    await pause(100);
    expect(gw.connections).toBe(1);
    expect(client.stats.unacked).toBe(1);
  });

  it('does not crash without an error listener, and reports undecodable frames to one', async () => {
    const gw = await startGateway({
      onConnection: (ws) => {
        ws.send(encodeError({ timestamp: 0 }, { code: 'SLOW_CONSUMER', message: 'x' }));
        ws.send(new Uint8Array([9, 9, 9]));
      },
    });
    const quiet = makeClient({ url: gw.url, deviceId: 'quiet', batchMs: 0 });
    await quiet.connect();
    quiet.send({ channel: 1, value: 1 });
    await waitFor(() => quiet.stats.acked === 1, 'an ack after the bad frames');
    const loud = makeClient({ url: gw.url, deviceId: 'loud' });
    const errors = collect(loud, 'error');
    await loud.connect();
    await waitFor(() => errors.length === 2, 'two errors');
    expect(errors.map((e) => e.code)).toEqual(['SLOW_CONSUMER', 'FRAME_TRUNCATED']);
    expect(errors[1]!.cause).toBeInstanceOf(FrameError);
  });
});

describe('DeviceClient commands', () => {
  it("without handlers: emits 'command' once per id, answers 'received', and remembers the sendResult() answer", async () => {
    const command = encodeCommand({ timestamp: Date.now() }, { commandId: 'c-1', name: 'reboot', args: '{"delay":1}' });
    const gw = await startGateway({
      onConnection: (ws) => {
        ws.send(command);
        ws.send(command); // a redelivery
      },
    });
    const client = makeClient({ url: gw.url });
    const commands = collect(client, 'command');
    client.on('command', (c) => {
      expect(c).toMatchObject({ commandId: 'c-1', name: 'reboot', args: '{"delay":1}', expiresAt: 0 });
      expect(client.sendResult(c.commandId, CommandStatus.Ok, '"done"')).toBe(true);
    });
    await client.connect();
    await waitFor(() => gw.results.length === 4, 'four command results');
    expect(gw.results.map((r) => [r.commandId, r.status, r.payload])).toEqual([
      ['c-1', CommandStatus.Received, ''],
      ['c-1', CommandStatus.Ok, '"done"'],
      ['c-1', CommandStatus.Received, ''],
      ['c-1', CommandStatus.Ok, '"done"'],
    ]);
    expect(gw.results[1]!.epoch).toBe(client.epoch);
    expect(commands).toHaveLength(1);
    expect(client.stats.unacked).toBe(0);
    expect(() => client.sendResult('c-1', CommandStatus.Received)).toThrow(RangeError);
  });

  const commandCases: { name: string; command: { name: string; args?: string; expiresAt?: number }; status: CommandStatus; payload: string }[] = [
    { name: 'a return value is ok with its JSON', command: { name: 'add', args: '{"a":1,"b":2}' }, status: CommandStatus.Ok, payload: '{"sum":3}' },
    { name: 'empty args are null, undefined is null', command: { name: 'echo' }, status: CommandStatus.Ok, payload: 'null' },
    { name: 'an async handler resolves to ok', command: { name: 'slow-echo', args: '[1,"x"]' }, status: CommandStatus.Ok, payload: '{"got":[1,"x"]}' },
    { name: 'a thrown error fails with its message', command: { name: 'boom' }, status: CommandStatus.Failed, payload: '"sensor not responding"' },
    { name: 'a rejected promise fails with its message', command: { name: 'async-boom' }, status: CommandStatus.Failed, payload: '"valve stuck"' },
    { name: 'an unknown name is rejected', command: { name: 'self_destruct' }, status: CommandStatus.Rejected, payload: '"unknown command \\"self_destruct\\""' },
    { name: 'an expired command fails without running', command: { name: 'add', args: '{"a":1,"b":2}', expiresAt: 1_000_000 }, status: CommandStatus.Failed, payload: '"expired"' },
    { name: 'a command not expired yet runs', command: { name: 'add', args: '{"a":2,"b":2}', expiresAt: 253402300799999 }, status: CommandStatus.Ok, payload: '{"sum":4}' },
    { name: 'arguments that are not JSON are rejected', command: { name: 'add', args: '{a:1}' }, status: CommandStatus.Rejected, payload: expect.stringMatching(/^"arguments are not JSON: /) },
    { name: 'a result JSON cannot express fails', command: { name: 'bigint' }, status: CommandStatus.Failed, payload: expect.stringMatching(/^"the result is not serializable as JSON: /) },
    { name: 'a result over 60 KB fails', command: { name: 'huge' }, status: CommandStatus.Failed, payload: `"the result is ${61_442} bytes of JSON, more than ${60 * 1024}"` },
  ];

  it("onCommand: answers 'received', then the handler's result, for every kind of outcome", async () => {
    const gw = await startGateway({
      onConnection: (ws) => commandCases.forEach((c, i) => ws.send(encodeCommand({ timestamp: Date.now() }, { commandId: `c-${i}`, ...c.command }))),
    });
    const client = makeClient({ url: gw.url });
    const ran: string[] = [];
    client
      .onCommand('add', (args) => {
        ran.push('add');
        const { a, b } = args as { a: number; b: number };
        return { sum: a + b };
      })
      .onCommand('echo', () => undefined)
      .onCommand('slow-echo', async (args) => {
        await pause(20);
        return { got: args };
      })
      .onCommand('boom', () => {
        throw new Error('sensor not responding');
      })
      .onCommand('async-boom', () => Promise.reject(new Error('valve stuck')))
      .onCommand('bigint', () => ({ n: 1n }))
      .onCommand('huge', () => 'x'.repeat(61_440));
    await client.connect();
    await waitFor(() => gw.results.length === 2 * commandCases.length, 'a result for every command');
    commandCases.forEach((c, i) => {
      const mine = gw.results.filter((r) => r.commandId === `c-${i}`);
      expect(mine.map((r) => r.status), c.name).toEqual([CommandStatus.Received, c.status]);
      expect(mine[0]!.payload, c.name).toBe('');
      expect(mine[1]!.payload, c.name).toEqual(c.payload);
    });
    expect(ran).toEqual(['add', 'add']); // the expired one did not run
    expect(() => client.onCommand('x'.repeat(65), () => 1)).toThrow(/"name"/);
    expect(() => client.onCommand('x', 'nope' as never)).toThrow(/"handler"/);
  });

  it('runs a handler once per command id and answers every redelivery with the same result', async () => {
    let socket: WebSocket | undefined;
    const gw = await startGateway({ onConnection: (ws) => (socket = ws) });
    const client = makeClient({ url: gw.url });
    let runs = 0;
    client.onCommand('calibrate', async (args) => {
      runs++;
      await pause(50);
      return { offset: (args as { offset: number }).offset };
    });
    await client.connect();
    const command = encodeCommand({ timestamp: Date.now() }, { commandId: 'cal-1', name: 'calibrate', args: '{"offset":0.5}' });
    socket!.send(command);
    socket!.send(command); // while the handler runs: only "received"
    await waitFor(() => gw.results.length === 3, 'received twice, then the result');
    socket!.send(command); // after it finished: "received" and the remembered result
    await waitFor(() => gw.results.length === 5, 'the result again');
    expect(gw.results.map((r) => [r.status, r.payload])).toEqual([
      [CommandStatus.Received, ''],
      [CommandStatus.Received, ''],
      [CommandStatus.Ok, '{"offset":0.5}'],
      [CommandStatus.Received, ''],
      [CommandStatus.Ok, '{"offset":0.5}'],
    ]);
    expect(runs).toBe(1);
  });

  it('keeps a result that is ready while disconnected and sends it right after the reconnect', async () => {
    let accept = true;
    const gw = await startGateway({
      refuse: () => (accept ? undefined : 503),
      onConnection: (ws, n) => {
        if (n === 1) ws.send(encodeCommand({ timestamp: Date.now() }, { commandId: 'v-1', name: 'open_valve', args: '{"valve":3}' }));
      },
    });
    const client = makeClient({ url: gw.url });
    let finish!: (v: unknown) => void;
    let runs = 0;
    client.onCommand('open_valve', () => {
      runs++;
      return new Promise((resolve) => (finish = resolve));
    });
    await client.connect();
    await waitFor(() => gw.results.length === 1, 'received');
    accept = false; // refuse reconnects (503) until the result is ready
    const gone = nextEvent(client, 'disconnected');
    for (const ws of [...gw.sockets]) ws.terminate();
    await gone;
    finish({ open: true });
    await pause(100); // retries are refused meanwhile
    expect(client.connected).toBe(false);
    expect(gw.results).toHaveLength(1);
    accept = true;
    await waitFor(() => gw.results.length === 2, 'the result after the reconnect');
    expect(gw.results[1]).toMatchObject({ commandId: 'v-1', status: CommandStatus.Ok, payload: '{"open":true}' });
    expect(gw.resultsByConnection[1]!.map((r) => r.status)).toEqual([CommandStatus.Ok]);
    expect(runs).toBe(1);
  });
});

describe('DeviceClient.close()', () => {
  it('flushes the open batch and waits for every ack before closing with 1000', async () => {
    const gw = await startGateway({ ackDelayMs: 150 });
    const client = makeClient({ url: gw.url, batchMs: 1000, closeTimeoutMs: 2000 });
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    client.send({ channel: 1, value: 1 });
    client.send({ channel: 2, value: 2 });
    const t0 = Date.now();
    await client.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(client.stats).toMatchObject({ sent: 1, acked: 1, unacked: 0, pendingReadings: 0 });
    expect(gw.telemetry[0]!.readings).toHaveLength(2);
    await waitFor(() => gw.closeCodes.length === 1, 'the server to see the close');
    expect(gw.closeCodes).toEqual([1000]);
    expect(disconnects).toEqual([{ code: 1000, reason: 'client closed', willReconnect: false }]);
    expect(() => client.send({ channel: 1, value: 1 })).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    await expect(client.connect()).rejects.toMatchObject({ code: 'CLOSED' });
    await client.close(); // idempotent
  });

  it('gives up after closeTimeoutMs when acks do not come', async () => {
    const gw = await startGateway({ ack: false });
    const client = makeClient({ url: gw.url, batchMs: 0, closeTimeoutMs: 100 });
    const errors = collect(client, 'error');
    await client.connect();
    client.send({ channel: 1, value: 1 });
    const t0 = Date.now();
    await client.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(client.stats.unacked).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['CLOSE_TIMEOUT']);
    await waitFor(() => gw.closeCodes.length === 1, 'the server to see the close');
    expect(gw.closeCodes).toEqual([1000]);
  });
});

// ---------------------------------------------------------------------------------------------
// The parts on their own.

describe('Outbox and serial numbers', () => {
  const frame = (seq: number): Uint8Array => new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0, seq & 0xff]);

  it('compares seqs in serial-number arithmetic across the wrap', () => {
    expect(nextSeq(0xffffffff)).toBe(0);
    expect(seqAtOrBefore(0xffffffff, 0)).toBe(true);
    expect(seqAtOrBefore(0, 0xffffffff)).toBe(false);
    expect(seqAtOrBefore(5, 5)).toBe(true);
    expect(seqAtOrBefore(6, 5)).toBe(false);
  });

  it('releases through a cumulative ack across the wrap and ignores stale acks', () => {
    const box = new Outbox(10);
    for (const s of [0xfffffffe, 0xffffffff, 0, 1]) box.push(s, frame(s), true);
    expect(box.release(0xfffffffd)).toBe(0);
    expect(box.release(0xffffffff)).toBe(2);
    expect(box.oldestSeq).toBe(0);
    expect(box.release(0xfffffffe)).toBe(0);
    expect(box.release(1)).toBe(2);
    expect(box.size).toBe(0);
  });

  it('range acks mark exactly their frames and release them once everything older is acked', () => {
    const box = new Outbox(200);
    const start = 0xffffffc0; // 64 frames before the wrap, 36 after; 100 frames make it grow past 64 slots
    const seqs = [...Array(100).keys()].map((k) => (start + k) >>> 0);
    for (const s of seqs.slice(0, 70)) box.push(s, frame(s), true);
    expect(box.releaseRange(seqs[10]!, seqs[65]!)).toBe(0);
    for (const s of seqs.slice(70)) box.push(s, frame(s), s !== seqs[99]); // the last one not written yet
    expect([box.size, box.pending]).toEqual([100, 44]);
    expect(box.releaseRange(seqs[70]!, seqs[60]!)).toBe(0); // last before first: an empty range
    expect(box.releaseRange(seqs[95]!, (seqs[99]! + 50) >>> 0)).toBe(0); // seqs never sent are not marked, nor the unwritten frame
    expect(box.pending).toBe(40);
    const rewritten: number[] = [];
    expect(box.writeAll((f) => rewritten.push(f[8]!))).toBe(39); // marked frames are not written again
    expect(rewritten).toEqual([...seqs.slice(0, 10), ...seqs.slice(66, 95), seqs[99]!].map((s) => s & 0xff));
    expect(box.releaseRange((seqs[0]! - 5) >>> 0, seqs[4]!)).toBe(5); // starts before the head
    expect(box.oldestSeq).toBe(seqs[5]);
    expect(box.lastReleased).toBe(seqs[4]);
    expect(box.release(seqs[9]!)).toBe(61); // cumulative to 9, then the marked 10–65
    expect(box.lastReleased).toBe(seqs[65]);
    expect(box.dropOldest(1)).toBe(1); // 66
    expect([box.oldestSeq, box.size, box.pending]).toEqual([seqs[67], 33, 29]); // 67–99, of which 95–98 are acked
    expect(box.releaseRange(seqs[67]!, seqs[99]!)).toBe(33);
    expect([box.size, box.pending]).toEqual([0, 0]);
  });

  it('drops only frames no ack covers and keeps GapBefore on an unacked frame', () => {
    const box = new Outbox(10);
    for (let s = 0; s < 6; s++) box.push(s, frame(s), true);
    box.releaseRange(1, 2);
    const frames: Uint8Array[] = [];
    expect(box.dropOldest(2)).toBe(2); // 0 and 3 dropped; the acked 1 and 2 left on the way
    box.writeAll((f) => frames.push(f));
    expect(frames.map((f) => [f[8], f[2]])).toEqual([
      [4, FrameFlag.GapBefore],
      [5, 0],
    ]);
  });

  it('grows, keeps order, and flags GapBefore on the new oldest frame after a drop', () => {
    const box = new Outbox(100);
    for (let s = 0; s < 100; s++) box.push(s, frame(s), s < 60);
    expect(box.unwritten).toBe(40);
    expect(box.dropOldest(70)).toBe(70);
    expect(box.unwritten).toBe(30);
    const written: number[] = [];
    expect(box.writeAll((f) => written.push(f[8]!, f[2]!))).toBe(0);
    expect(written.slice(0, 4)).toEqual([70, FrameFlag.GapBefore, 71, 0]);
    expect(box.unwritten).toBe(0);
    const single = new Outbox(1);
    single.push(0, frame(0), true);
    single.dropOldest(1);
    const f = frame(1);
    single.push(1, f, true);
    expect(f[2]).toBe(FrameFlag.GapBefore);
  });
});

describe('Backoff', () => {
  it('is full jitter: random() * min(max, initial * 2^attempt), reset to the start', () => {
    const rolls = [0.5, 1, 0.25, 0.999, 0.5, 0];
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => rolls.shift()! });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 200, 100, 0.999 * 800, 500]);
    expect(b.attempt).toBe(5);
    b.reset();
    expect(b.next()).toBe(0);
    const big = new Backoff({ initialMs: 1, maxMs: 30_000, random: () => 1 });
    for (let i = 0; i < 2000; i++) big.next();
    expect(big.next()).toBe(30_000);
  });

  it('drives the client: delays grow per failure, reset after the first ack, timeouts retry', async () => {
    vi.useFakeTimers();
    const handlers: TransportHandlers[] = [];
    const transport: TransportFactory = (h) => {
      handlers.push(h);
      return { send: () => {}, close: () => queueMicrotask(() => h.close({ code: 1000, reason: '', unauthorized: false })), destroy: () => {} };
    };
    const client = new DeviceClient({
      url: 'ws://unused',
      deviceId: 'd',
      token: TOKEN,
      transport,
      random: () => 0.5,
      backoffInitialMs: 100,
      backoffMaxMs: 1000,
      connectTimeoutMs: 5000,
      timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) },
    });
    cleanups.push(() => client.close());
    const errors = collect(client, 'error');
    const drop = { code: 1006, reason: '', unauthorized: false };
    const connected = client.connect();
    expect(handlers).toHaveLength(1);
    handlers[0]!.close(drop);
    vi.advanceTimersByTime(49);
    expect(handlers).toHaveLength(1);
    vi.advanceTimersByTime(1); // 0.5 * 100
    expect(handlers).toHaveLength(2);
    handlers[1]!.close(drop);
    vi.advanceTimersByTime(99);
    expect(handlers).toHaveLength(2);
    vi.advanceTimersByTime(1); // 0.5 * 200
    expect(handlers).toHaveLength(3);
    vi.advanceTimersByTime(5000); // connect timeout, then 0.5 * 400
    expect(errors.map((e) => e.code)).toEqual(['CONNECT_FAILED', 'CONNECT_FAILED', 'CONNECT_TIMEOUT']);
    vi.advanceTimersByTime(199);
    expect(handlers).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(handlers).toHaveLength(4);
    handlers[3]!.open();
    await connected;
    handlers[3]!.message(encodeAck({ epoch: client.epoch, seq: 0, timestamp: 0 }));
    handlers[3]!.close(drop);
    vi.advanceTimersByTime(50); // back to 0.5 * 100
    expect(handlers).toHaveLength(5);
  });
});

describe('DeviceClient and refusals for storage', () => {
  it('STORAGE_FULL: keeps every frame, reconnects with backoff and resends them all', async () => {
    const gw = await startGateway({
      ack: false,
      onTelemetry: (ws, f, k) => {
        if (gw.connections === 1) {
          if (k === 1) {
            ws.send(encodeError({ timestamp: Date.now(), epoch: f.epoch, seq: f.seq }, { code: 'STORAGE_FULL', message: 'storage is full' }));
            ws.close(4507, 'STORAGE_FULL');
          }
          return;
        }
        ws.send(encodeAck({ epoch: f.epoch, seq: f.seq, timestamp: Date.now() }));
      },
    });
    const client = makeClient({ url: gw.url, batchMs: 0, maxReadingsPerFrame: 1 });
    const errors = collect(client, 'error');
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    client.send([
      { channel: 1, value: 1 },
      { channel: 1, value: 2 },
      { channel: 1, value: 3 },
    ]);
    await waitFor(() => client.stats.unacked === 0, 'every frame acked after the reconnect');
    expect(client.stats).toMatchObject({ acked: 3, dropped: 0, rejected: 0, reconnects: 1 });
    expect(gw.seqsByConnection[1]).toEqual([0, 1, 2]);
    expect(errors.map((e) => e.code)).toContain('STORAGE_FULL');
    expect(disconnects[0]).toMatchObject({ code: 4507, willReconnect: true });
  });

  it('TIMESTAMP_OUT_OF_RANGE: drops exactly the refused frame (counted, never resent) and flags the next one GapBefore', async () => {
    const gw = await startGateway({
      ack: false,
      onTelemetry: (ws, f) => {
        if (gw.connections === 1 && ws.readyState === ws.OPEN) {
          if (f.seq === 1) {
            ws.send(encodeError({ timestamp: Date.now(), epoch: f.epoch, seq: f.seq }, { code: 'TIMESTAMP_OUT_OF_RANGE', message: 'too old' }));
            ws.close(4508, 'TIMESTAMP_OUT_OF_RANGE');
          } else if (f.seq === 0) ws.send(encodeAck({ epoch: f.epoch, seq: 0, timestamp: Date.now() }));
          return;
        }
        if (gw.connections > 1) ws.send(encodeAck({ epoch: f.epoch, seq: f.seq, timestamp: Date.now() }));
      },
    });
    const client = makeClient({ url: gw.url, batchMs: 0, maxReadingsPerFrame: 1 });
    const rejected = collect(client, 'rejected');
    await client.connect();
    client.send([
      { channel: 1, value: 1 },
      { channel: 1, value: 2 },
      { channel: 1, value: 3 },
    ]);
    await waitFor(() => client.stats.unacked === 0 && gw.connections === 2, 'the rest acked after the reconnect');
    expect(rejected).toEqual([{ seq: 1, frames: 1 }]);
    expect(client.stats).toMatchObject({ acked: 2, rejected: 1, dropped: 0 });
    expect(gw.seqsByConnection[1]).toEqual([2]);
    const resent = gw.telemetry.filter((f) => f.seq === 2).at(-1)!;
    expect(resent.flags & FrameFlag.GapBefore).toBe(FrameFlag.GapBefore);
  });
});

describe('Outbox.dropSeq', () => {
  const frame = (seq: number): Uint8Array => new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0, seq & 0xff]);
  const flagged = (f: Uint8Array): boolean => (f[2]! & FrameFlag.GapBefore) !== 0;

  it('drops one frame from the middle, keeps the older ones, and flags the next one', () => {
    const box = new Outbox(10);
    const frames = [10, 11, 12, 13].map((s) => frame(s));
    [10, 11, 12, 13].forEach((s, i) => box.push(s, frames[i]!, i < 3));
    expect(box.dropSeq(11)).toBe(true);
    expect([box.size, box.unwritten, box.oldestSeq]).toEqual([3, 1, 10]);
    expect(flagged(frames[2]!)).toBe(true); // 12, right after the dropped one
    expect(flagged(frames[0]!) || flagged(frames[3]!)).toBe(false);
    const rewritten: number[] = [];
    box.writeAll((f) => rewritten.push(f[8]!));
    expect(rewritten).toEqual([10, 12, 13]);
    expect(box.dropSeq(99)).toBe(false);
    expect(box.release(13)).toBe(3);
  });

  it('dropping the newest frame flags the next one pushed; dropping the head flags the new head', () => {
    const box = new Outbox(10);
    box.push(1, frame(1), true);
    box.push(2, frame(2), true);
    expect(box.dropSeq(2)).toBe(true);
    const next = frame(3);
    box.push(3, next, true);
    expect(flagged(next)).toBe(true);
    const head = new Outbox(10);
    const second = frame(6);
    head.push(5, frame(5), true);
    head.push(6, second, true);
    expect(head.dropSeq(5)).toBe(true);
    expect([head.size, head.oldestSeq, flagged(second)]).toEqual([1, 6, true]);
  });
});
