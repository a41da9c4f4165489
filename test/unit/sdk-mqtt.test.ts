import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client as BrokerClient } from 'aedes';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeFrame } from '../../devices/codec/decode.js';
import { encodeAck, encodeCommand, encodeError, encodeTelemetry } from '../../devices/codec/encode.js';
import { FrameError } from '../../devices/codec/errors.js';
import { CommandStatus, FrameType, type CommandResultFrame, type TelemetryFrame } from '../../devices/codec/types.js';
import {
  DeviceClient,
  MQTT_CLOSE_CODES,
  brokerOptions,
  deviceTopics,
  mqttTransport,
  type DeviceClientEvents,
  type DeviceClientOptions,
  type TransportCloseInfo,
  type TransportHandlers,
} from '../../devices/sdk/index.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'secret-token-1';

// ---------------------------------------------------------------------------------------------
// Teardown and waiting: every resource registers its cleanup; every wait is bounded.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Proves something does NOT happen: a short, bounded pause. */
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function collect<K extends keyof DeviceClientEvents>(client: DeviceClient, event: K): DeviceClientEvents[K][0][] {
  const out: DeviceClientEvents[K][0][] = [];
  client.on(event, ((arg: DeviceClientEvents[K][0]) => out.push(arg)) as never);
  return out;
}

// ---------------------------------------------------------------------------------------------
// A fake gateway: its state outlives broker restarts. It reads telemetry and results straight off
// the broker, acks cumulatively (highest contiguous seq) on devices/{id}/commands, and can send commands.

interface GatewayOptions {
  /** Device ids whose SUBSCRIBE to their own commands topic the ACL refuses. */
  denySubscribe?: Set<string>;
  /** Delays every subscribe authorization (to prove the client waits for the SUBACK). */
  subscribeDelayMs?: number;
  ack?: boolean;
  /** CONNACK return code for refused credentials (default 4, bad username or password). */
  refuseWith?: 4 | 5;
  onTelemetry?: (broker: Broker, frame: TelemetryFrame, deviceId: string) => void;
  /** Never answer authorizePublish: the broker then never sends a PUBACK. */
  holdPublishes?: boolean;
  /** Runs once the device's commands subscription is in place (after its SUBACK). */
  onSubscribed?: (broker: Broker, deviceId: string) => void;
}

interface Gateway {
  opts: GatewayOptions;
  logins: { clientId: string; username: string | undefined; ok: boolean }[];
  telemetry: TelemetryFrame[];
  telemetryTopics: Set<string>;
  retained: number;
  results: { topic: string; frame: CommandResultFrame }[];
  seen: Set<number>;
  /** Per device: the seq after the highest contiguous one seen (what a cumulative ack may cover). */
  next: Map<string, number>;
  subscribed: string[];
}

interface Broker {
  port: number;
  url: string;
  aedes: Aedes;
  clients: Map<string, BrokerClient>;
  stop(): Promise<void>;
}

function newGateway(opts: GatewayOptions = {}): Gateway {
  return { opts, logins: [], telemetry: [], telemetryTopics: new Set(), retained: 0, results: [], seen: new Set(), next: new Map(), subscribed: [] };
}

function publishTo(aedes: Aedes, deviceId: string, frame: Uint8Array, done: () => void = () => {}): void {
  aedes.publish({ cmd: 'publish', topic: deviceTopics(deviceId).commands, payload: Buffer.from(frame), qos: 1, retain: false, dup: false }, done);
}

/** An MQTT 3.1.1 PUBLISH packet, QoS 0, written by hand (fixed header, remaining length, topic, payload). */
function rawPublish(topic: string, payload: Uint8Array): Buffer {
  const t = Buffer.from(topic);
  let n = 2 + t.length + payload.length;
  const len: number[] = [];
  do {
    len.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(t.length);
  return Buffer.concat([Buffer.from([0x30, ...len]), head, t, payload]);
}

/** An in-process aedes broker on 127.0.0.1 (port 0 = any), with the gateway's auth and ACL, wired to `gw`. */
async function startBroker(gw: Gateway, port = 0): Promise<Broker> {
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      const ok = username === client.id && password?.toString() === TOKEN;
      gw.logins.push({ clientId: client.id, username, ok });
      if (ok) return done(null, true);
      const err = new Error('bad username or password') as AuthenticateError;
      err.returnCode = gw.opts.refuseWith ?? 4;
      done(err, false);
    },
    authorizePublish: (client, packet, done) => {
      if (gw.opts.holdPublishes) return;
      const own = client !== null && (packet.topic === deviceTopics(client.id).telemetry || packet.topic === deviceTopics(client.id).results);
      done(own ? null : new Error(`not allowed to publish to ${packet.topic}`));
    },
    authorizeSubscribe: (client, sub, done) => {
      const allowed = sub.topic === deviceTopics(client.id).commands && !gw.opts.denySubscribe?.has(client.id);
      setTimeout(() => done(null, allowed ? sub : null), gw.opts.subscribeDelayMs ?? 0);
    },
  });
  const clients = new Map<string, BrokerClient>();
  aedes.on('clientReady', (c) => clients.set(c.id, c));
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  let stopped: Promise<void> | undefined;
  const broker: Broker = {
    port: address.port,
    url: `mqtt://127.0.0.1:${address.port}`,
    aedes,
    clients,
    stop: () =>
      (stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await closed;
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
      })()),
  };
  aedes.on('subscribe', (subs, client) => {
    // aedes reports a refused subscription with qos 128, which its types do not admit.
    if (!subs.some((s) => s.topic === deviceTopics(client.id).commands && (s.qos as number) !== 128)) return;
    gw.subscribed.push(client.id);
    gw.opts.onSubscribed?.(broker, client.id);
  });
  const onTelemetry = (packet: AedesPublishPacket, cb: () => void): void => {
    cb();
    const deviceId = packet.topic.split('/')[1]!;
    const f = decodeFrame(new Uint8Array(packet.payload as Buffer));
    if (f instanceof FrameError) throw f;
    if (f.type !== FrameType.Telemetry) throw new Error(`frame type ${f.type} on ${packet.topic}`);
    gw.telemetry.push(f);
    gw.telemetryTopics.add(packet.topic);
    if (packet.retain) gw.retained++;
    gw.seen.add(f.seq);
    let next = gw.next.get(deviceId) ?? 0;
    while (gw.seen.has(next)) next++;
    gw.next.set(deviceId, next);
    gw.opts.onTelemetry?.(broker, f, deviceId);
    if (gw.opts.ack === false || next === 0) return;
    publishTo(aedes, deviceId, encodeAck({ epoch: f.epoch, seq: next - 1, timestamp: Date.now() }));
  };
  const onResult = (packet: AedesPublishPacket, cb: () => void): void => {
    cb();
    const f = decodeFrame(new Uint8Array(packet.payload as Buffer));
    if (f instanceof FrameError || f.type !== FrameType.CommandResult) throw new Error(`not a command result on ${packet.topic}`);
    gw.results.push({ topic: packet.topic, frame: f });
  };
  await new Promise<void>((resolve) => aedes.subscribe('devices/+/telemetry', onTelemetry, resolve));
  await new Promise<void>((resolve) => aedes.subscribe('devices/+/results', onResult, resolve));
  cleanups.push(() => broker.stop());
  return broker;
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

// ---------------------------------------------------------------------------------------------

describe('DeviceClient over MQTT: options', () => {
  const base = { deviceId: 'd1', token: TOKEN };

  it('picks the transport from the URL scheme or the transport option, and checks both', () => {
    expect(() => new DeviceClient({ ...base, url: 'mqtt://127.0.0.1:1' })).not.toThrow();
    expect(() => new DeviceClient({ ...base, url: 'mqtts://127.0.0.1', transport: 'mqtt' })).not.toThrow();
    expect(() => new DeviceClient({ ...base, url: 'mqtt://127.0.0.1', transport: 'ws' })).toThrow(/"url"/);
    expect(() => new DeviceClient({ ...base, url: 'ws://127.0.0.1', transport: 'mqtt' })).toThrow(/"url"/);
    expect(() => new DeviceClient({ ...base, url: 'http://127.0.0.1' })).toThrow(/"url"/);
    expect(() => new DeviceClient({ ...base, url: 'mqtt://127.0.0.1', transport: 'amqp' as never })).toThrow(/"transport"/);
    expect(() => new DeviceClient({ ...base, url: 'mqtt://127.0.0.1', mqtt: { protocolVersion: 3 as never } })).toThrow(/"mqtt.protocolVersion"/);
    expect(() => new DeviceClient({ ...base, url: 'mqtt://127.0.0.1', mqtt: { keepaliveSec: -1 } })).toThrow(/"mqtt.keepaliveSec"/);
    expect(() => new DeviceClient({ ...base, url: 'mqtt://127.0.0.1', mqtt: { ca: 42 as never } })).toThrow(/"mqtt.ca"/);
  });

  it('still takes a TransportFactory whatever the URL (the test seam)', () => {
    const handlers: TransportHandlers[] = [];
    const client = makeClient({
      url: 'mqtt://unused',
      transport: (h) => {
        handlers.push(h);
        return { send: () => {}, close: () => queueMicrotask(() => h.close({ code: 1000, reason: '', unauthorized: false })), destroy: () => {} };
      },
    });
    const connecting = client.connect();
    expect(handlers).toHaveLength(1);
    connecting.catch(() => {}); // rejected with CLOSED by the cleanup
  });

  it('maps URLs and device ids to broker options and topics', () => {
    expect(brokerOptions('mqtt://127.0.0.1')).toEqual({ protocol: 'mqtt', host: '127.0.0.1', port: 1883 });
    expect(brokerOptions('mqtts://[::1]:9000/ignored')).toEqual({ protocol: 'mqtts', host: '::1', port: 9000 });
    expect(brokerOptions('mqtts://gw.example')).toMatchObject({ port: 8883 });
    expect(() => brokerOptions('ws://h')).toThrow(TypeError);
    expect(deviceTopics('s-1')).toEqual({ telemetry: 'devices/s-1/telemetry', results: 'devices/s-1/results', commands: 'devices/s-1/commands' });
  });
});

describe('DeviceClient over MQTT', () => {
  it('connects with id/token, sends 500 frames QoS 1 to its telemetry topic, all acked, then closes with 1000', async () => {
    const gw = newGateway();
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url, maxReadingsPerFrame: 1 });
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    expect(gw.logins).toEqual([{ clientId: 'sensor-1', username: 'sensor-1', ok: true }]);
    for (let i = 0; i < 500; i++) client.send({ channel: 1, value: i });
    await waitFor(() => client.stats.unacked === 0, 'every frame acked', 5000);
    expect(client.stats).toMatchObject({ sent: 500, acked: 500, resent: 0, dropped: 0, reconnects: 0, unacked: 0 });
    // Each seq exactly once. Not necessarily in order: aedes's internal subscriptions (mqemitter with
    // `concurrency`) reorder deliveries once the fake gateway's own ack publishes fill its slots.
    expect(gw.telemetry.map((f) => f.seq).sort((a, b) => a - b)).toEqual([...Array(500).keys()]);
    expect([...gw.telemetryTopics]).toEqual(['devices/sensor-1/telemetry']);
    expect(gw.retained).toBe(0);
    const gone = new Promise<void>((resolve) => broker.aedes.once('clientDisconnect', () => resolve()));
    await client.close();
    await Promise.race([gone, pause(2000).then(() => Promise.reject(new Error('the broker did not see the disconnect')))]);
    expect(disconnects).toEqual([{ code: 1000, reason: 'client closed', willReconnect: false }]);
  });

  it.each([4, 5] as const)('rejects connect() with UNAUTHORIZED on CONNACK %i and does not retry', async (rc) => {
    const gw = newGateway({ refuseWith: rc });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url, token: 'wrong-token' });
    const errors = collect(client, 'error');
    const disconnects = collect(client, 'disconnected');
    await expect(client.connect()).rejects.toMatchObject({ name: 'DeviceError', code: 'UNAUTHORIZED', status: undefined, closeCode: MQTT_CLOSE_CODES.NOT_AUTHORIZED });
    await pause(100); // backoffInitialMs is 10: a retry would have happened by now
    expect(gw.logins).toHaveLength(1);
    expect(errors.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
    expect(errors[0]!.message).toMatch(new RegExp(`^the gateway did not authorize device "sensor-1" \\(CONNACK ${rc}: .*, close code 4411\\); not reconnecting$`));
    expect(errors[0]!.message).not.toContain('HTTP');
    expect(errors[0]!.message).not.toContain('wrong-token');
    expect(disconnects).toEqual([{ code: MQTT_CLOSE_CODES.NOT_AUTHORIZED, reason: expect.stringMatching(new RegExp(`^CONNACK ${rc}: `)), willReconnect: false }]);
  });

  it('does not open, and stops, when the broker refuses the commands subscription', async () => {
    const gw = newGateway({ denySubscribe: new Set(['sensor-1']) });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url, batchMs: 0 });
    const connected = collect(client, 'connected');
    const disconnects = collect(client, 'disconnected');
    client.send({ channel: 1, value: 1 });
    await expect(client.connect()).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: undefined,
      closeCode: MQTT_CLOSE_CODES.SUBSCRIBE_REFUSED,
      message: 'the gateway did not authorize device "sensor-1" (SUBSCRIBE_REFUSED, close code 4410); not reconnecting',
    });
    await pause(100);
    expect(gw.logins).toHaveLength(1);
    expect(connected).toHaveLength(0);
    expect(gw.telemetry).toHaveLength(0);
    expect(disconnects).toEqual([{ code: MQTT_CLOSE_CODES.SUBSCRIBE_REFUSED, reason: 'SUBSCRIBE_REFUSED', willReconnect: false }]);
    expect(client.stats.unacked).toBe(1);
  });

  it('loses nothing when the broker goes down mid-stream and comes back on the same port', async () => {
    const gw = newGateway({
      onTelemetry: (b) => {
        if (gw.telemetry.length === 100 && b === first) {
          // Kill it outside aedes's delivery, then bring a fresh broker up on the same port.
          setImmediate(() => void b.stop().then(() => pause(100)).then(async () => (second = await startBroker(gw, first.port))));
        }
      },
    });
    const first = await startBroker(gw);
    let second: Broker | undefined;
    const client = makeClient({ url: first.url, maxReadingsPerFrame: 1, maxUnackedFrames: 1000 });
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    for (let i = 0; i < 30; i++) {
      for (let k = 0; k < 10; k++) client.send({ channel: 1, value: i * 10 + k });
      await pause(5);
    }
    await waitFor(() => second !== undefined && client.stats.unacked === 0, 'every frame acked after the restart', 6000);
    for (let s = 0; s < 300; s++) expect(gw.seen.has(s)).toBe(true);
    expect(gw.next.get('sensor-1')).toBe(300);
    const stats = client.stats;
    expect(stats).toMatchObject({ sent: 300, acked: 300, dropped: 0, unacked: 0 });
    expect(stats.reconnects).toBe(1);
    expect(stats.resent).toBeGreaterThan(0);
    expect(disconnects[0]).toMatchObject({ code: 1006, willReconnect: true });
    expect(gw.logins.filter((l) => l.ok).length).toBeGreaterThanOrEqual(2);
  });

  it("opens only after the SUBACK, emits 'command' and publishes 'received' and sendResult() to its results topic", async () => {
    const gw = newGateway({
      subscribeDelayMs: 100,
      onSubscribed: (b, id) => publishTo(b.aedes, id, encodeCommand({ timestamp: Date.now() }, { commandId: 'c-1', name: 'reboot', args: '{"delay":1}' })),
    });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url });
    const commands = collect(client, 'command');
    client.on('command', (c) => expect(client.sendResult(c.commandId, CommandStatus.Ok, '"done"')).toBe(true));
    await client.connect();
    expect(gw.subscribed).toEqual(['sensor-1']);
    await waitFor(() => gw.results.length === 2, 'received and the result', 3000);
    expect(commands).toMatchObject([{ commandId: 'c-1', name: 'reboot', args: '{"delay":1}', expiresAt: 0 }]);
    expect(gw.results).toMatchObject([
      { topic: 'devices/sensor-1/results', frame: { commandId: 'c-1', status: CommandStatus.Received, payload: '', epoch: client.epoch } },
      { topic: 'devices/sensor-1/results', frame: { commandId: 'c-1', status: CommandStatus.Ok, payload: '"done"', epoch: client.epoch } },
    ]);
    expect(client.stats.unacked).toBe(0);
  });

  it('onCommand over MQTT: received, then the result on the results topic; a redelivery does not run it again', async () => {
    const command = encodeCommand({ timestamp: Date.now() }, { commandId: 'm-1', name: 'set_interval', args: '{"ms":5000}' });
    const unknown = encodeCommand({ timestamp: Date.now() }, { commandId: 'm-2', name: 'format_disk' });
    const gw = newGateway({
      onSubscribed: (b, id) => publishTo(b.aedes, id, command, () => publishTo(b.aedes, id, unknown)),
    });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url });
    const calls: unknown[] = [];
    client.onCommand('set_interval', async (args, c) => {
      calls.push([args, c.commandId]);
      return { intervalMs: (args as { ms: number }).ms };
    });
    await client.connect();
    await waitFor(() => gw.results.length === 4, 'received and a result for both', 3000);
    publishTo(broker.aedes, 'sensor-1', command); // the gateway redelivers m-1 (say, after a restart)
    await waitFor(() => gw.results.length === 6, 'the answer to the redelivery', 3000);
    expect(new Set(gw.results.map((r) => r.topic))).toEqual(new Set(['devices/sensor-1/results']));
    const byId = (id: string): [number, string][] => gw.results.filter((r) => r.frame.commandId === id).map((r) => [r.frame.status, r.frame.payload]);
    expect(byId('m-1')).toEqual([
      [CommandStatus.Received, ''],
      [CommandStatus.Ok, '{"intervalMs":5000}'],
      [CommandStatus.Received, ''],
      [CommandStatus.Ok, '{"intervalMs":5000}'],
    ]);
    expect(byId('m-2')).toEqual([
      [CommandStatus.Received, ''],
      [CommandStatus.Rejected, '"unknown command \\"format_disk\\""'],
    ]);
    expect(calls).toEqual([[{ ms: 5000 }, 'm-1']]);
  });

  it('holds a message that overtakes the SUBACK callback and hands it over right after open', async () => {
    // The broker writes a PUBLISH right behind the SUBACK, in the same tick, so both reach mqtt.js in
    // one chunk: it emits 'message' before it calls the subscribe callback.
    const gw = newGateway({
      onSubscribed: (b, id) => {
        const conn = b.clients.get(id)?.conn;
        conn?.write(rawPublish(deviceTopics(id).commands, encodeCommand({ timestamp: Date.now() }, { commandId: 'early', name: 'ping' })));
      },
    });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url });
    const events: string[] = [];
    client.on('connected', () => events.push('connected'));
    client.on('command', (c) => events.push(`command ${c.commandId}`));
    await client.connect();
    await waitFor(() => events.length === 2, 'the command', 3000);
    expect(events).toEqual(['connected', 'command early']);
  });

  it('turns an error frame followed by a disconnect into the WebSocket close code (4401 stops the client)', async () => {
    const gw = newGateway({
      ack: false,
      onTelemetry: (b, _f, id) =>
        publishTo(b.aedes, id, encodeError({ timestamp: Date.now() }, { code: 'FRAME_TOO_LARGE', message: 'frame is too large' }), () =>
          setImmediate(() => b.clients.get(id)?.close()),
        ),
    });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url, batchMs: 0 });
    const errors = collect(client, 'error');
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    client.send({ channel: 1, value: 1 });
    await waitFor(() => disconnects.length === 1, 'the disconnect', 3000);
    expect(disconnects).toEqual([{ code: 4401, reason: 'FRAME_TOO_LARGE', willReconnect: false }]);
    expect(errors.map((e) => e.code)).toEqual(['FRAME_TOO_LARGE', 'CONNECTION_REJECTED']);
    await pause(100);
    expect(gw.logins).toHaveLength(1);
    expect(client.stats.unacked).toBe(1);
  });

  it('does not let an old error frame decide a later, unrelated drop', async () => {
    const gw = newGateway({
      onSubscribed: (b, id) => {
        b.clients.get(id)?.conn.write(rawPublish(deviceTopics(id).commands, encodeError({ timestamp: 0 }, { code: 'FRAME_TOO_LARGE', message: 'x' })));
      },
    });
    const broker = await startBroker(gw);
    const client = makeClient({ url: broker.url });
    const errors = collect(client, 'error');
    const disconnects = collect(client, 'disconnected');
    await client.connect();
    await waitFor(() => errors.length === 1, 'the error frame', 3000);
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 6000); // past the 5 s an error frame explains a close
    await broker.stop();
    await waitFor(() => disconnects.length >= 1, 'the disconnect', 3000); // then failed retries follow
    expect(disconnects[0]).toMatchObject({ code: 1006, willReconnect: true });
  });

  it('retries with backoff while no broker listens, then connects', async () => {
    const gw = newGateway();
    const probe = await startBroker(gw);
    const port = probe.port;
    await probe.stop();
    const client = makeClient({ url: `mqtt://127.0.0.1:${port}` });
    const errors = collect(client, 'error');
    const connecting = client.connect();
    await waitFor(() => errors.length >= 2, 'two failed attempts', 3000);
    expect(errors.every((e) => e.code === 'CONNECT_FAILED')).toBe(true);
    await startBroker(gw, port);
    await Promise.race([connecting, pause(3000).then(() => Promise.reject(new Error('connect() did not resolve')))]);
    expect(client.connected).toBe(true);
  });
});

describe('mqttTransport on its own', () => {
  /** Starts one transport and records what it reports. */
  function start(url: string, token = TOKEN) {
    const seen = { opens: 0, messages: [] as Uint8Array[], closes: [] as TransportCloseInfo[] };
    const transport = mqttTransport({ url, deviceId: 'sensor-1', token, connectTimeoutMs: 2000 })({
      open: () => seen.opens++,
      message: (m) => seen.messages.push(new Uint8Array(m)),
      close: (info) => seen.closes.push(info),
    });
    cleanups.push(() => transport.destroy());
    return { transport, seen };
  }

  it('reports a refused connection once, as 1006 with the error', async () => {
    const probe = await startBroker(newGateway());
    await probe.stop();
    const { seen } = start(probe.url);
    await waitFor(() => seen.closes.length === 1, 'the close', 3000);
    await pause(50);
    expect(seen.opens).toBe(0);
    expect(seen.closes).toEqual([{ code: 1006, reason: expect.stringContaining('ECONNREFUSED'), unauthorized: false, error: expect.any(Error) }]);
  });

  it('close() waiting for PUBACKs is cut short by destroy(), and close is reported once with the given code', async () => {
    const gw = newGateway({ holdPublishes: true });
    const broker = await startBroker(gw);
    const gone = new Promise<void>((resolve) => broker.aedes.once('clientDisconnect', () => resolve()));
    const { transport, seen } = start(broker.url);
    await waitFor(() => seen.opens === 1, 'open', 3000);
    transport.send(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 0 }, [{ channel: 1, value: 1 }]));
    transport.close(1000, 'bye');
    await pause(100);
    expect(seen.closes).toEqual([]); // mqtt.js waits for the PUBACK that never comes
    transport.destroy();
    transport.destroy();
    await Promise.race([gone, pause(2000).then(() => Promise.reject(new Error('the socket stayed open')))]);
    await waitFor(() => seen.closes.length === 1, 'the close', 3000);
    await pause(50);
    expect(seen.closes).toEqual([{ code: 1000, reason: 'bye', unauthorized: false }]);
  });

  it('refuses to send a frame type that does not travel device → gateway', async () => {
    const broker = await startBroker(newGateway());
    const { transport, seen } = start(broker.url);
    await waitFor(() => seen.opens === 1, 'open', 3000);
    expect(() => transport.send(encodeAck({ epoch: 1, seq: 0, timestamp: 0 }))).toThrow(RangeError);
  });
});
