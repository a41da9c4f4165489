/**
 * The embedded MQTT broker (aedes) for devices that speak MQTT: same identity, ACL, ingest path,
 * presence and limits as WebSocket devices. Telemetry and results are taken in authorizePublish,
 * straight from the parsed packet, into the one ingest path.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { decodeFrame, encodeError, FrameType } from '../../devices/codec/index.js';
import type { Authenticator } from '../auth.js';
import type { DeviceState, DeviceTable } from '../devices.js';
import { GatewayError } from '../errors.js';
import type { Ingest } from '../ingest.js';
import type { Logger } from '../log.js';
import type { Presence } from '../presence.js';
import { MqttLink } from './link.js';
import { gatewayRouter } from './routing.js';
import { guardSocket } from './socket-guard.js';
import { badConnect, badPublish, badString, willAllowed } from './strict.js';
import { commandsTopic, parseUplink } from './topics.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  maxDevices: number;
  duplicateId: 'replace' | 'reject';
  /** ms a device's socket may stay full before the broker drops it. */
  drainTimeoutMs: number;
  connectTimeoutMs: number;
  /** Largest MQTT packet accepted (a frame plus its topic and headers). */
  maxPacketBytes: number;
  /** Serve mqtts:// with this certificate and key. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** With tls: also serve plain MQTT on this port (0 = no). */
  plaintextPort?: number;
}

// CONNACK return codes (MQTT 3.1.1, 3.2.2.3).
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

function connackError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

interface ClientState {
  device: DeviceState;
  link: MqttLink;
}

/** What preConnect found that only authenticate can answer with a CONNACK code. */
const REJECT_ID = Symbol('rejectId');

export class EmbeddedBroker {
  private broker: Aedes | undefined;
  private servers: Server[] = [];
  plaintextPort = 0;
  private readonly sockets = new Set<Socket>();
  private readonly byClient = new WeakMap<Client, ClientState>();
  port = 0;
  /** Called when a device PUBACKs a command. */
  onDelivered: ((deviceId: string, commandId: string) => void) | undefined;

  constructor(
    private readonly devices: DeviceTable,
    private readonly auth: Authenticator,
    private readonly ingest: Ingest,
    private readonly presence: Presence,
    private readonly log: Logger,
    private readonly opts: EmbeddedBrokerOptions,
  ) {}

  async start(): Promise<void> {
    const broker = await Aedes.createBroker({
      // See routing.ts: why plain aedes collapses under many publishers, and what this changes.
      mq: gatewayRouter(),
      concurrency: 0,
      drainTimeout: this.opts.drainTimeoutMs,
      connectTimeout: this.opts.connectTimeoutMs,
      maxClientsIdLength: 128,
      heartbeatInterval: 60_000,
      preConnect: (client, packet, cb) => this.preConnect(client, packet, cb),
      authenticate: (client, username, password, cb) => this.authenticate(client, username, password, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, cb),
      // Devices only ever receive what the gateway sends on their own commands topic; nothing is
      // routed between devices. (aedes asks this for its own client.publish too.)
      authorizeForward: (client, packet) => (packet.topic === commandsTopic(client.id) ? packet : null),
    });
    this.broker = broker;
    // 'client' fires when the session is registered, before queued packets run; 'clientReady' may
    // come after a fast client (CONNECT, PUBLISH, DISCONNECT) is already gone.
    broker.on('client', (client) => this.onReady(client));
    broker.on('clientDisconnect', (client) => this.onGone(client, 'closed'));
    // PUBACK from a device for a command: the transport's proof of delivery.
    broker.on('ack', (packet, client) => {
      const s = client ? this.byClient.get(client) : undefined;
      const payload = (packet as { payload?: Buffer } | undefined)?.payload;
      if (!s || !payload) return;
      const f = decodeFrame(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
      if (!(f instanceof Error) && f.type === FrameType.Command) this.onDelivered?.(s.device.id, f.commandId);
    });
    broker.on('keepaliveTimeout', (client) => {
      const s = this.byClient.get(client);
      if (s) s.link.closingCause ??= 'timeout';
    });
    broker.on('clientError', (client, err) => {
      const s = this.byClient.get(client);
      this.log.debug({ device: client?.id, err: err.message }, 'mqtt client error');
      if (s && !s.link.closingCause) s.link.closingCause = 'connection_lost';
    });
    broker.on('connectionError', (_client, err) => {
      this.ingest.stats.countError('MQTT_PROTOCOL_ERROR');
      this.log.debug({ err: err.message }, 'mqtt connection refused before CONNECT completed');
    });
    const onSocket = (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      guardSocket(socket, {
        readCap: 1024,
        maxPacketBytes: this.opts.maxPacketBytes,
        onViolation: (code, reason) => {
          this.ingest.stats.countError(code);
          const client = (socket as Socket & { client?: Client }).client;
          const s = client ? this.byClient.get(client) : undefined;
          if (s) {
            s.device.errors++;
            s.device.lastErrorCode = code;
            s.link.closingCause = 'kicked';
            s.device.offlineDetail = code;
          }
          this.log.info({ device: client?.id ?? undefined, remote: socket.remoteAddress, code }, `MQTT connection closed: ${reason}`);
        },
      });
      broker.handle(socket);
    };
    const tls = this.opts.tls;
    this.port = await this.listen(tls ? createTlsServer({ cert: tls.cert, key: tls.key }, onSocket) : createServer(onSocket), this.opts.port);
    if (tls && this.opts.plaintextPort) this.plaintextPort = await this.listen(createServer(onSocket), this.opts.plaintextPort);
  }

  private listen(server: Server, port: number): Promise<number> {
    this.servers.push(server);
    // A TLS handshake failure is the client's problem, not an error of the server.
    server.on('tlsClientError', () => this.ingest.stats.countError('MQTT_TLS_HANDSHAKE'));
    return new Promise<number>((resolve, reject) => {
      server.once('error', (err) => reject(new GatewayError('LISTEN_FAILED', `MQTT could not listen on ${this.opts.host}:${port}: ${err.message} (--mqtt-port 0 turns MQTT off)`)));
      server.listen(port, this.opts.host, () => resolve((server.address() as { port: number }).port));
    });
  }

  private preConnect(client: Client, packet: ConnectPacket, cb: (err: Error | null, ok: boolean) => void): void {
    // A refusal here closes the connection without a CONNACK, as MQTT 3.1.1 demands for these.
    const bad = badConnect(packet);
    if (bad) {
      this.ingest.stats.countError('MQTT_MALFORMED_PACKET');
      this.log.info({ remote: (client.conn as Socket).remoteAddress, reason: bad }, 'MQTT CONNECT refused, connection closed');
      return cb(new Error(bad), false);
    }
    // [MQTT-3.1.3-8]: CONNACK 2 then close; only authenticate can send a return code.
    if (packet.clientId === '' && !packet.clean) (client as Client & { [REJECT_ID]?: boolean })[REJECT_ID] = true;
    const id = packet.clientId;
    if (this.devices.online >= this.opts.maxDevices && !this.devices.get(id)?.online) {
      this.ingest.stats.countError('MQTT_TOO_MANY_DEVICES');
      return cb(connackError(SERVER_UNAVAILABLE, `the gateway holds its maximum of ${this.opts.maxDevices} connected devices`), false);
    }
    cb(null, true);
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, cb: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const id = client.id;
    if ((client as Client & { [REJECT_ID]?: boolean })[REJECT_ID]) {
      this.ingest.stats.countError('MQTT_BAD_CLIENT_ID');
      return cb(connackError(IDENTIFIER_REJECTED, 'an empty client id needs a clean session'), false);
    }
    if (username !== undefined && username !== id) {
      this.ingest.stats.countError('MQTT_CLIENT_ID_MISMATCH');
      return cb(connackError(IDENTIFIER_REJECTED, 'the client id must be the device id (the username)'), false);
    }
    const result = this.auth.device(id, password ? password.toString('utf8') : '');
    if (!result.ok) {
      this.ingest.stats.countError(result.code === 'BAD_DEVICE_ID' ? 'MQTT_BAD_CLIENT_ID' : 'MQTT_BAD_CREDENTIALS');
      this.log.info({ device: id.slice(0, 128), transport: 'mqtt', code: result.code }, 'device refused at CONNECT: ' + result.message);
      return cb(connackError(result.code === 'BAD_DEVICE_ID' ? IDENTIFIER_REJECTED : BAD_USERNAME_OR_PASSWORD, result.message), false);
    }
    const will = (client as Client & { will?: { topic: string } | null; _will?: { topic: string } | null })._will;
    if (will && !willAllowed(id, will.topic)) {
      this.ingest.stats.countError('MQTT_FOREIGN_TOPIC');
      return cb(connackError(NOT_AUTHORIZED, `a will may only go to devices/${id}/<name> other than telemetry, results and commands`), false);
    }
    // A CONNECT the device already gave up on (its connect timed out and it retried) must not
    // replace the live session it retried with.
    const conn = client.conn as Socket;
    if (conn.destroyed || conn.readableEnded || !conn.writable) {
      return cb(connackError(SERVER_UNAVAILABLE, 'the connection closed before its CONNECT was handled'), false);
    }
    const device = this.devices.getOrCreate(id, result.entry);
    if (device.online && this.opts.duplicateId === 'reject') {
      this.ingest.stats.countError('MQTT_DUPLICATE_ID');
      return cb(connackError(IDENTIFIER_REJECTED, 'this device id is connected already (--duplicate-id reject)'), false);
    }
    const remote = (client.conn as Socket).remoteAddress ?? '';
    this.byClient.set(client, { device, link: new MqttLink(client, remote) });
    // aedes takes over a duplicate client id by closing the old session silently, before any event
    // of ours: tell the old connection now, so its device stops instead of reconnecting in a loop.
    this.presence.replace(device, { transport: 'mqtt', remoteAddress: remote });
    cb(null, true);
  }

  private onReady(client: Client): void {
    const s = this.byClient.get(client);
    if (!s) return;
    this.presence.connect(s.device, s.link);
  }

  private onGone(client: Client, cause: 'closed'): void {
    const s = this.byClient.get(client);
    if (!s) return;
    // aedes marks a DISCONNECT packet; anything else is a dropped connection.
    const graceful = (client as unknown as { _disconnected?: boolean })._disconnected === true;
    this.presence.disconnect(s.device, s.link, graceful ? cause : 'connection_lost', undefined);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (client === null) return cb(null); // the broker's own messages
    const malformed = badPublish(packet);
    if (malformed) {
      this.ingest.stats.countError('MQTT_MALFORMED_PACKET');
      return cb(new Error(malformed));
    }
    // The device's will, published by the broker after an unclean disconnect (checked at CONNECT).
    if ((client as Client & { will?: unknown }).will === packet) return cb(null);
    const s = this.byClient.get(client);
    const up = parseUplink(packet.topic);
    if (!s || !up || up.id !== client.id) {
      this.ingest.stats.countError('MQTT_FOREIGN_TOPIC');
      if (s) s.device.errors++;
      this.log.info({ device: client.id, topic: packet.topic.slice(0, 200) }, `device published outside devices/${client.id}/telemetry|results: connection closed`);
      if (s) s.link.closingCause = 'kicked';
      return cb(new Error(`publishing to ${packet.topic} is not allowed`));
    }
    // PROTOCOL.md: the retain flag is ignored; no retained copy of a device's frame is kept.
    packet.retain = false;
    const payload = packet.payload;
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const refusal = this.ingest.handle(s.device, bytes, Date.now());
    if (refusal) {
      s.link.send(encodeError({ timestamp: Date.now() }, { code: refusal.code, message: refusal.message.slice(0, 1024) }));
      s.link.closingCause = 'kicked';
      s.device.offlineDetail = refusal.code;
      s.link.close();
      return cb(new Error(refusal.code));
    }
    cb(null);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    if (badString(sub.topic)) {
      this.ingest.stats.countError('MQTT_MALFORMED_PACKET');
      return cb(new Error('invalid UTF-8 or U+0000 in the topic filter [MQTT-1.5.3-1/2]'));
    }
    if (sub.topic === commandsTopic(client.id)) return cb(null, sub);
    this.ingest.stats.countError('MQTT_SUBSCRIBE_REFUSED');
    const s = this.byClient.get(client);
    if (s) s.device.errors++;
    // A null subscription answers SUBACK 0x80 (failure) for this topic without closing.
    cb(null, null);
  }

  /** Stops accepting, disconnects every device, closes the broker. */
  async close(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise<void>((r) => server.close(() => r()))));
    const broker = this.broker;
    this.broker = undefined;
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
  }

  /** Marks every connected MQTT device as going away because the gateway stops. */
  markShutdown(): void {
    for (const socket of this.sockets) {
      const client = (socket as Socket & { client?: Client }).client;
      const s = client ? this.byClient.get(client) : undefined;
      if (s) s.link.closingCause = 'shutdown';
    }
  }
}
