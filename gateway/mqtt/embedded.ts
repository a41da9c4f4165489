/**
 * The embedded MQTT broker (aedes) for devices that speak MQTT: the session port
 * (session/sessions.ts) over aedes hooks, so identity, limits, presence, ingest and refusals are
 * the same as for WebSocket devices. What is left here is the wire: CONNACK codes, the MQTT 3.1.1
 * must-close rules, the topic ACL. Telemetry and results are taken in authorizePublish, straight
 * from the parsed packet; so is JSON telemetry, whose PUBACK waits until its readings are safe.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { CONNACK, Refusal } from '../session/refusals.js';
import type { DeviceSessions, Session } from '../session/sessions.js';
import { MqttLink } from './link.js';
import { OfflineQueueBound, type OutgoingStore } from './offline-queue.js';
import { gatewayRouter } from './routing.js';
import { guardSocket } from './socket-guard.js';
import { aedesPublishRefusal, badConnect, badPublish, badString, willAllowed } from './strict.js';
import { commandsTopic, isAlarmsFilter, OPERATOR_USERNAME, parseUplink } from './topics.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** ms a device's socket may stay full before the broker drops it. */
  drainTimeoutMs: number;
  connectTimeoutMs: number;
  /** Largest MQTT packet accepted (a frame plus its topic and headers). */
  maxPacketBytes: number;
  /** Serve mqtts:// with this certificate and key. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** With tls: also serve plain MQTT on this port (0 = no). */
  plaintextPort?: number;
  /** Checks an integration's password (the operator token): it may then subscribe to alarms/#. */
  operator?: (token: string) => boolean;
  /** QoS 1/2 messages kept per offline persistent session; newer ones are dropped (offline-queue.ts). */
  maxQueued: number;
}

/** The CONNACK a refusal maps to (aedes sends it, then closes). */
function connackError(r: Refusal): AuthenticateError {
  const returnCode = typeof r.spec.connack === 'number' ? r.spec.connack : CONNACK.NOT_AUTHORIZED;
  return Object.assign(new Error(`${r.code}: ${r.message}`), { returnCode }) as AuthenticateError;
}

/** What preConnect found that only authenticate can answer with a CONNACK code. */
const REJECT_ID = Symbol('rejectId');

type RawClient = Client & { [REJECT_ID]?: boolean; _will?: { topic: string } | null };

export class EmbeddedBroker {
  private broker: Aedes | undefined;
  private servers: Server[] = [];
  plaintextPort = 0;
  private readonly sockets = new Set<Socket>();
  private readonly byClient = new WeakMap<Client, Session>();
  /** Connections refused and counted already, so aedes's connectionError for them is not counted again. */
  private readonly refused = new WeakSet<Socket>();
  port = 0;
  private readonly deliveredListeners: ((deviceId: string, commandId: string, note: string) => void)[] = [];
  /** Integrations (username $operator, the operator token): they only subscribe to alarms. */
  private readonly operators = new WeakSet<Client>();
  private queueBound: OfflineQueueBound | undefined;

  constructor(
    private readonly sessions: DeviceSessions,
    private readonly log: Logger,
    private readonly opts: EmbeddedBrokerOptions,
  ) {}

  /** Messages dropped for offline persistent sessions that held --mqtt-max-queued (metrics). */
  get queueDropped(): number {
    return this.queueBound?.dropped ?? 0;
  }

  /** A device PUBACKed a command: the transport's proof of delivery. */
  onDelivered(l: (deviceId: string, commandId: string, note: string) => void): void {
    this.deliveredListeners.push(l);
  }

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
      authorizeForward: (client, packet) => (packet.topic === commandsTopic(client.id) || (this.operators.has(client) && packet.topic.startsWith('alarms/')) ? packet : null),
    });
    this.broker = broker;
    const clients = (broker as unknown as { clients: Record<string, Client | undefined> }).clients; // untyped in aedes 1.2
    this.queueBound = new OfflineQueueBound(this.opts.maxQueued, (id) => clients[id] !== undefined, this.log);
    this.queueBound.guard((broker as unknown as { persistence: OutgoingStore }).persistence);
    // 'client' fires when the session is registered, before queued packets run; 'clientReady' may
    // come after a fast client (CONNECT, PUBLISH, DISCONNECT) is already gone.
    broker.on('client', (client) => this.onReady(client));
    broker.on('clientDisconnect', (client) => this.onGone(client, 'closed'));
    broker.on('connackSent', (_connack, client) => {
      const link = this.byClient.get(client)?.link;
      if (link instanceof MqttLink) link.connackSent();
    });
    broker.on('keepaliveTimeout', (client) => {
      const s = this.byClient.get(client);
      if (s) s.link.closingCause ??= 'timeout';
    });
    broker.on('clientError', (client, err) => {
      const s = this.byClient.get(client);
      this.log.debug({ device: client?.id, err: err.message }, 'mqtt client error');
      // Our own refusals (authorizePublish) come back here too, with the cause set already.
      if (s?.link.closingCause) return;
      const refusal = aedesPublishRefusal(err.message);
      if (refusal) this.refuseOnSession(client, refusal[0], refusal[1]);
      else if (s) s.link.closingCause = 'connection_lost';
    });
    broker.on('connectionError', (client, err) => {
      const conn = client?.conn as Socket | undefined;
      if (conn && this.refused.has(conn)) return;
      this.sessions.turnAway('MQTT_PROTOCOL_ERROR', `the connection failed before CONNECT completed: ${err.message}`, { transport: 'mqtt', remote: conn?.remoteAddress });
    });
    const onSocket = (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      guardSocket(socket, {
        readCap: 1024,
        maxPacketBytes: this.opts.maxPacketBytes,
        onViolation: (code, reason) => {
          this.refused.add(socket);
          const client = (socket as Socket & { client?: Client }).client;
          const s = client ? this.byClient.get(client) : undefined;
          if (s) s.refuse(code, `MQTT connection closed: ${reason}`, 'closed-by-transport');
          else this.sessions.turnAway(code, `MQTT connection closed: ${reason}`, { transport: 'mqtt', device: client?.id ?? undefined, remote: socket.remoteAddress });
        },
        // PUBACK from a device for a command: the transport's proof of delivery (issue 15 point 3).
        onPuback: (packetId) => {
          const client = (socket as Socket & { client?: Client }).client;
          const s = client ? this.byClient.get(client) : undefined;
          const commandId = s?.link instanceof MqttLink ? s.link.pubacked(packetId) : undefined;
          if (s && commandId !== undefined) for (const l of this.deliveredListeners) l(s.device.id, commandId, 'MQTT PUBACK from the device');
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
    server.on('tlsClientError', (err: Error, socket: Socket) => {
      this.sessions.turnAway('MQTT_TLS_HANDSHAKE', `TLS handshake failed: ${err.message}`, { transport: 'mqtt', remote: socket.remoteAddress });
    });
    return new Promise<number>((resolve, reject) => {
      server.once('error', (err) => reject(new GatewayError('LISTEN_FAILED', `MQTT could not listen on ${this.opts.host}:${port}: ${err.message} (--mqtt-port 0 turns MQTT off)`)));
      server.listen(port, this.opts.host, () => resolve((server.address() as { port: number }).port));
    });
  }

  private preConnect(client: Client, packet: ConnectPacket, cb: (err: Error | null, ok: boolean) => void): void {
    // A refusal here closes the connection without a CONNACK, as MQTT 3.1.1 demands for these.
    const bad = badConnect(packet);
    if (bad) {
      const conn = client.conn as Socket;
      this.refused.add(conn);
      this.sessions.turnAway('MQTT_MALFORMED_PACKET', `CONNECT refused, connection closed: ${bad}`, { transport: 'mqtt', remote: conn.remoteAddress });
      return cb(new Error(bad), false);
    }
    // [MQTT-3.1.3-8]: CONNACK 2 then close; only authenticate can send a return code (a refusal
    // here closes without one), so every other check waits for it.
    if (packet.clientId === '' && !packet.clean) (client as RawClient)[REJECT_ID] = true;
    cb(null, true);
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, cb: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const raw = client as RawClient;
    // An empty client id without a clean session (flagged by preConnect) names no device: aedes
    // made up an id for it, which must not be taken for the device's.
    const id = raw[REJECT_ID] ? '' : client.id;
    const conn = client.conn as Socket;
    const remote = conn.remoteAddress ?? '';
    if (username === OPERATOR_USERNAME) {
      // An integration only reads alarms: a will would let it publish where devices listen.
      if (raw._will) return cb(connackError(this.sessions.turnAway('MQTT_FOREIGN_TOPIC', `${OPERATOR_USERNAME} may not set a will`, { transport: 'mqtt', remote })), false);
      if (this.opts.operator?.(password ? password.toString('utf8') : '')) {
        // aedes would take the client id over from whoever holds it: an integration must not knock
        // a device off (which would reconnect and knock it off in turn).
        const holder = (this.broker as unknown as { clients: Record<string, Client | undefined> } | undefined)?.clients[client.id]; // untyped in aedes 1.2
        if (holder && holder !== client && !this.operators.has(holder)) {
          return cb(connackError(this.sessions.turnAway('DEVICE_ALREADY_CONNECTED', `${OPERATOR_USERNAME} used the client id of a connected device; give the integration a client id of its own`, { transport: 'mqtt', device: client.id, remote })), false);
        }
        this.operators.add(client);
        return cb(null, true);
      }
      return cb(connackError(this.sessions.turnAway('UNAUTHORIZED', `${OPERATOR_USERNAME} connects with the operator token as password`, { transport: 'mqtt', remote })), false);
    }
    if (id && username !== undefined && username !== id) {
      return cb(connackError(this.sessions.turnAway('MQTT_CLIENT_ID_MISMATCH', 'the client id must be the device id (the username)', { transport: 'mqtt', device: id, remote })), false);
    }
    const link = new MqttLink(client, remote);
    const s = this.sessions.admit(
      {
        transport: 'mqtt',
        id,
        remote,
        credentials: { token: password ? password.toString('utf8') : '' },
        check: () => {
          const will = raw._will;
          if (will && !willAllowed(id, will.topic)) return ['MQTT_FOREIGN_TOPIC', `a will may only go to devices/${id}/<name> other than telemetry, results and commands`];
          // A CONNECT the device already gave up on (its connect timed out and it retried) must not
          // replace the live session it retried with.
          if (conn.destroyed || conn.readableEnded || !conn.writable) return ['MQTT_CONNECT_ABANDONED', 'the connection closed before its CONNECT was handled'];
          return undefined;
        },
      },
      link,
    );
    if (s instanceof Refusal) return cb(connackError(s), false);
    this.byClient.set(client, s);
    // aedes takes over a duplicate client id by closing the old session silently, before any event
    // of ours: tell the old connection now, so its device stops instead of reconnecting in a loop.
    s.takeOver();
    cb(null, true);
  }

  private onReady(client: Client): void {
    this.byClient.get(client)?.open();
  }

  private onGone(client: Client, cause: 'closed'): void {
    const s = this.byClient.get(client);
    if (!s) return;
    // aedes marks a DISCONNECT packet; anything else is a dropped connection.
    const graceful = (client as unknown as { _disconnected?: boolean })._disconnected === true;
    s.end(graceful ? cause : 'connection_lost', s.link instanceof MqttLink ? s.link.closedFor : undefined);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (client === null) return cb(null); // the broker's own messages
    // The device's will, published by the broker after an unclean disconnect (checked at CONNECT;
    // it carries no packet id, so it is not a PUBLISH from the wire). No device may subscribe to
    // it, so a retained copy would only pile up in the broker's memory, one per will topic.
    if ((client as Client & { will?: unknown }).will === packet) {
      packet.retain = false;
      return cb(null);
    }
    const malformed = badPublish(packet);
    if (malformed) {
      this.refuseOnSession(client, 'MQTT_MALFORMED_PACKET', malformed);
      return cb(new Error(malformed));
    }
    const s = this.byClient.get(client);
    const up = parseUplink(packet.topic);
    if (!s || !up || up.id !== client.id) {
      this.refuseOnSession(client, 'MQTT_FOREIGN_TOPIC', `published to ${packet.topic.slice(0, 200)}, outside devices/${client.id}/telemetry|telemetry/json|results: connection closed`);
      return cb(new Error(`publishing to ${packet.topic} is not allowed`));
    }
    // PROTOCOL.md: the retain flag is ignored; no retained copy of a device's frame is kept.
    packet.retain = false;
    const payload = packet.payload;
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    if (up.kind === 'json') {
      // A JSON message has no ack frame of its own: its PUBACK waits until its readings are safe
      // (aedes reads no more of this connection meanwhile). A failure closes the connection unacked,
      // but a message that is bad in itself is answered after its error frame (sessions.ts says why).
      const r = s.json(bytes, Date.now());
      if (r instanceof Refusal) return cb(r.messageOnly ? null : new Error(r.code));
      void r.then((safe) => cb(safe ? null : new Error('ACK_TIMEOUT')));
      return;
    }
    const refusal = s.frame(bytes, Date.now());
    cb(refusal ? new Error(refusal.code) : null);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    if (badString(sub.topic)) {
      const why = 'invalid UTF-8 or U+0000 in the topic filter [MQTT-1.5.3-1/2]';
      this.refuseOnSession(client, 'MQTT_MALFORMED_PACKET', why);
      return cb(new Error(why));
    }
    if (sub.topic === commandsTopic(client.id) && !this.operators.has(client)) return cb(null, sub);
    if (this.operators.has(client) && isAlarmsFilter(sub.topic)) return cb(null, sub);
    // A null subscription answers SUBACK 0x80 (failure) for this topic without closing.
    this.refuseOnSession(client, 'MQTT_SUBSCRIBE_REFUSED', `subscribed to ${sub.topic.slice(0, 200)}; only devices/${client.id}/commands is allowed`, 'stay');
    cb(null, null);
  }

  /** A refusal aedes carries out itself (closing the connection, or a SUBACK failure). */
  private refuseOnSession(client: Client, code: 'MQTT_MALFORMED_PACKET' | 'MQTT_FOREIGN_TOPIC' | 'MQTT_QOS2_UNRELEASED' | 'MQTT_SUBSCRIBE_REFUSED', message: string, end: 'closed-by-transport' | 'stay' = 'closed-by-transport'): void {
    const s = this.byClient.get(client);
    if (s) s.refuse(code, message, end);
    else this.sessions.turnAway(code, message, { transport: 'mqtt', device: client.id, remote: (client.conn as Socket).remoteAddress });
  }

  /** Publishes to subscribed integrations (QoS 1); `done` once the broker took it. */
  publish(topic: string, payload: Buffer, done: (err?: Error) => void): void {
    const broker = this.broker;
    if (!broker) return done(new Error('the embedded broker is not running'));
    broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false } as PublishPacket, (err) => done(err ?? undefined));
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
