/**
 * The MQTT transport: one MQTT connection (mqtt.js, MQTT 3.1.1 by default) carrying the same frame
 * bytes as the WebSocket transport, so DeviceClient behaves the same over both.
 *
 * Wire mapping (the gateway's contract; devices/PROTOCOL.md "Transports / MQTT"):
 * - CONNECT: clientId = username = device id, password = token, clean session, keep alive
 *   `keepaliveSec` (default 30). No will, no retain, no session state: the DeviceClient's outbox is
 *   the only place unacked frames live, and it resends them on every new connection.
 * - Device → gateway, QoS 1, retain false, one frame per message, chosen by the frame type (byte 1):
 *   telemetry (0x01) to `devices/{id}/telemetry`, command result (0x02) to `devices/{id}/results`.
 * - Gateway → device: the device subscribes to `devices/{id}/commands` at QoS 1; every gateway →
 *   device frame (ack 0x81, command 0x82, error 0x83) arrives there as one message's payload.
 * - `open` only after CONNACK accepted AND the SUBACK granted the commands topic (granted QoS below
 *   0x80): before that the gateway's acks would be lost. mqtt.js emits a PUBLISH that arrives in the
 *   same chunk as the SUBACK before it calls the subscribe callback: such messages are held and
 *   handed over right after `open`.
 *
 * How a connection ends (TransportCloseInfo), `close` exactly once:
 * - CONNACK "bad username or password" / "not authorized" (3.1.1: 4, 5; MQTT 5: 0x86, 0x87):
 *   MQTT_CLOSE_CODES.NOT_AUTHORIZED, unauthorized → the client stops (UNAUTHORIZED).
 * - SUBACK refused the commands topic (the broker's ACL): MQTT_CLOSE_CODES.SUBSCRIBE_REFUSED, reason
 *   'SUBSCRIBE_REFUSED', also `unauthorized`. The connection is authenticated but not allowed to
 *   receive its own downlink; retrying with the same credentials would refuse again, forever, and
 *   DeviceClient only honours 44xx close codes on connections that opened, so `unauthorized` is
 *   what stops it from looping.
 * - The gateway sent an error frame and the connection ended within ERROR_CLOSE_WINDOW_MS after it
 *   (PROTOCOL.md: "over MQTT it publishes the error frame and disconnects the client"; MQTT 3.1.1
 *   has no close reason): the close code that error has over WebSocket (closeCodeFor), so e.g.
 *   FRAME_TOO_LARGE stops the client (4401), REPLACED too (4409), and SHUTTING_DOWN (4503)
 *   reconnects, exactly as over WebSocket. The window keeps an old error frame that did not end the
 *   connection (a gateway behind an external broker cannot disconnect devices) from deciding a
 *   later, unrelated drop.
 * - Anything else (refused TCP, TLS failure, other CONNACK codes, CONNACK timeout, keep alive
 *   timeout, the broker closing): 1006 with the reason; the client reconnects with backoff.
 * - close(code, reason): DISCONNECT and end (or drop, if not connected yet), then `close` with that
 *   code and reason; mqtt.js first waits for outstanding PUBACKs. destroy(): drop the socket at once.
 *
 * mqtt.js keeps no frames of ours beyond one connection: reconnectPeriod 0 (this object is one
 * connection; DeviceClient reconnects with backoff), queueQoSZero false, and `send` publishes only
 * while open. Its in-flight store holds a QoS 1 publish until PUBACK (mqtt.js clones the packet
 * there; that copy is mqtt.js's own) and is dropped with the connection.
 */
import { connect, type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import { decodeFrame } from '../codec/decode.js';
import { closeCodeFor, errorCodeName, FrameError } from '../codec/errors.js';
import { FrameType } from '../codec/types.js';
import type { Transport, TransportCloseInfo, TransportFactory, TransportHandlers, TransportTarget } from './transport.js';

/** MQTT settings of a DeviceClient (`mqtt` option). */
export interface MqttOptions {
  /** 4 = MQTT 3.1.1 (default; what the gateway's embedded broker speaks), 5 = MQTT 5. */
  protocolVersion?: 4 | 5;
  /** Keep alive in seconds: the client pings when idle and drops a connection that stays silent 1.5× as long (default 30; 0 = off). */
  keepaliveSec?: number;
  /** CA certificate (PEM) that verifies the broker of an mqtts:// URL; replaces Node's default CA list. */
  ca?: string | Buffer;
}

export const MQTT_DEFAULTS = {
  protocolVersion: 4 as 4 | 5,
  keepaliveSec: 30,
} as const;

/**
 * Close codes this transport reports for refusals MQTT has no close code for. 4400–4499: the client
 * does not reconnect. 4400–4409 already name the gateway's WebSocket closes (4403 is NOT_BINARY).
 */
export const MQTT_CLOSE_CODES = {
  /** The SUBACK refused `devices/{id}/commands`. */
  SUBSCRIBE_REFUSED: 4410,
  /** The CONNACK refused the credentials. */
  NOT_AUTHORIZED: 4411,
} as const;

/** Everything mqttTransport() needs: where, who, and the MQTT settings. */
export interface MqttTransportOptions extends TransportTarget, MqttOptions {
  /** CONNACK wait in ms (DeviceClient passes its connectTimeoutMs; default 10000). */
  connectTimeoutMs?: number;
}

/** The three topics of one device (PROTOCOL.md). */
export function deviceTopics(deviceId: string): { telemetry: string; results: string; commands: string } {
  const base = `devices/${deviceId}/`;
  return { telemetry: `${base}telemetry`, results: `${base}results`, commands: `${base}commands` };
}

const ABNORMAL_CLOSURE = 1006;
const SUBACK_FAILURE = 0x80;
/** CONNACK codes that mean "these credentials will not do": 3.1.1 return codes, then MQTT 5 reason codes. */
const REFUSED_CREDENTIALS: Record<4 | 5, readonly number[]> = { 4: [4, 5], 5: [0x86, 0x87] };
/** Messages that overtake the SUBACK are held until open; a burst longer than this is dropped (acks are cumulative, commands are redelivered). */
const MAX_EARLY_MESSAGES = 1024;
/** An error frame explains a connection end at most this long after it arrived. */
const ERROR_CLOSE_WINDOW_MS = 5000;
const noop = (): void => {};

/** mqtt.js connection options for a mqtt:// or mqtts:// URL; throws a TypeError for any other scheme. */
export function brokerOptions(url: string): Pick<IClientOptions, 'protocol' | 'host' | 'port'> {
  const u = new URL(url);
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') throw new TypeError(`an MQTT URL starts with mqtt:// or mqtts://, got ${u.protocol}//`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { protocol: u.protocol === 'mqtts:' ? 'mqtts' : 'mqtt', host, port: u.port === '' ? (u.protocol === 'mqtts:' ? 8883 : 1883) : Number(u.port) };
}

/** A TransportFactory for the gateway's MQTT broker (Node, `mqtt` package). Checks the URL now. */
export function mqttTransport(o: MqttTransportOptions): TransportFactory {
  const protocolVersion = o.protocolVersion ?? MQTT_DEFAULTS.protocolVersion;
  const options: IClientOptions = {
    ...brokerOptions(o.url),
    clientId: o.deviceId,
    username: o.deviceId,
    password: o.token,
    protocolVersion,
    clean: true,
    keepalive: o.keepaliveSec ?? MQTT_DEFAULTS.keepaliveSec,
    connectTimeout: o.connectTimeoutMs ?? 10_000,
    reconnectPeriod: 0,
    queueQoSZero: false,
    resubscribe: false,
    // mqtt.js's debug log prints whole packets, CONNECT (and so the token) included.
    log: noop,
  };
  if (o.ca !== undefined) options.ca = o.ca;
  const topics = deviceTopics(o.deviceId);
  const refused = REFUSED_CREDENTIALS[protocolVersion];
  // mqtt.js writes into the options object it gets (hostname, clientId, ...): a fresh copy per connection.
  return (handlers) => new MqttTransport({ ...options }, topics, refused, handlers);
}

class MqttTransport implements Transport {
  readonly #client: MqttClient;
  readonly #handlers: TransportHandlers;
  readonly #topics: ReturnType<typeof deviceTopics>;
  /** `open` was called. */
  #opened = false;
  /** `close` was called. */
  #done = false;
  /** Set by close() or by a refused SUBACK: how to report the end, whatever mqtt.js says. */
  #ending: TransportCloseInfo | undefined;
  #connack: number | undefined;
  #refusedCredentials = false;
  #error: Error | undefined;
  /** The last error frame from the gateway, as the close code it has over WebSocket, and when it came. */
  #gatewayClose: { code: number; reason: string; at: number } | undefined;
  #early: Buffer[] | undefined = [];

  constructor(options: IClientOptions, topics: ReturnType<typeof deviceTopics>, refused: readonly number[], handlers: TransportHandlers) {
    this.#handlers = handlers;
    this.#topics = topics;
    const client = connect(options);
    this.#client = client;
    const onPacket = (packet: Packet): void => {
      if (packet.cmd !== 'connack') return;
      client.removeListener('packetreceive', onPacket);
      this.#connack = packet.returnCode ?? packet.reasonCode ?? 0;
      this.#refusedCredentials = refused.includes(this.#connack);
    };
    client.on('packetreceive', onPacket);
    client.on('connect', () => this.#subscribe());
    client.on('message', (topic, payload) => this.#message(topic, payload));
    client.on('error', (err) => {
      this.#error ??= err;
    });
    client.on('close', () => this.#closed());
  }

  #subscribe(): void {
    if (this.#ending !== undefined || this.#done) return;
    this.#client.subscribe(this.#topics.commands, { qos: 1 }, (err, _granted, packet) => {
      if (this.#ending !== undefined || this.#done) return;
      const codes = (packet?.granted ?? []) as number[];
      if (codes.length > 0 && codes.every((c) => c < SUBACK_FAILURE)) {
        this.#open();
      } else if (codes.length > 0) {
        this.#end({ code: MQTT_CLOSE_CODES.SUBSCRIBE_REFUSED, reason: 'SUBSCRIBE_REFUSED', unauthorized: true });
      } else if (err !== null) {
        // No SUBACK: the connection went away meanwhile, and 'close' reports it.
        this.#error ??= err;
      }
    });
  }

  #open(): void {
    this.#opened = true;
    this.#handlers.open();
    const early = this.#early;
    this.#early = undefined;
    for (const payload of early ?? []) {
      if (this.#done) return;
      this.#deliver(payload);
    }
  }

  /** Delivered until `close`, also while closing (as over WebSocket: a late ack still counts). */
  #message(topic: string, payload: Buffer): void {
    if (topic !== this.#topics.commands || this.#done) return;
    if (this.#opened) this.#deliver(payload);
    else if (this.#early !== undefined && this.#early.length < MAX_EARLY_MESSAGES) this.#early.push(payload);
  }

  #deliver(payload: Buffer): void {
    if (payload[1] === FrameType.Error) {
      const frame = decodeFrame(payload);
      const name = frame instanceof FrameError || frame.type !== FrameType.Error ? undefined : errorCodeName(frame.code);
      if (name !== undefined) this.#gatewayClose = { code: closeCodeFor(name), reason: name, at: Date.now() };
    }
    this.#handlers.message(payload);
  }

  #closed(): void {
    if (this.#done) return;
    this.#done = true;
    this.#handlers.close(this.#closeInfo());
  }

  #closeInfo(): TransportCloseInfo {
    if (this.#ending !== undefined) return this.#ending;
    const error = this.#error;
    let info: TransportCloseInfo;
    if (this.#refusedCredentials) {
      info = { code: MQTT_CLOSE_CODES.NOT_AUTHORIZED, reason: `CONNACK ${this.#connack}: ${error?.message ?? 'refused'}`, unauthorized: true };
    } else if (this.#gatewayClose !== undefined && Date.now() - this.#gatewayClose.at <= ERROR_CLOSE_WINDOW_MS) {
      // However the socket ended (FIN, RST): the gateway said why just before.
      info = { code: this.#gatewayClose.code, reason: this.#gatewayClose.reason, unauthorized: false };
    } else {
      info = { code: ABNORMAL_CLOSURE, reason: error?.message ?? 'the broker closed the connection', unauthorized: false };
    }
    if (error !== undefined) info.error = error;
    return info;
  }

  /** Ends the connection on our side and fixes what `close` will report. */
  #end(info: TransportCloseInfo): void {
    if (this.#done || this.#ending !== undefined) return;
    this.#ending = info;
    // Before CONNACK a DISCONNECT would only be queued by mqtt.js: drop the socket instead.
    this.#client.end(!this.#client.connected);
  }

  send(frame: Uint8Array): void {
    // mqtt.js would queue a publish while not connected, and complain while disconnecting.
    if (!this.#opened || this.#done || this.#ending !== undefined || !this.#client.connected) return;
    const type = frame[1];
    const topic = type === FrameType.Telemetry ? this.#topics.telemetry : type === FrameType.CommandResult ? this.#topics.results : undefined;
    if (topic === undefined) throw new RangeError(`only telemetry (0x01) and command result (0x02) frames go to the gateway, got type ${String(type)}`);
    // A view over the frame's bytes, not a copy.
    this.#client.publish(topic, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), { qos: 1, retain: false });
  }

  close(code: number, reason: string): void {
    this.#end({ code, reason, unauthorized: false });
  }

  destroy(): void {
    this.#ending ??= { code: ABNORMAL_CLOSURE, reason: 'destroyed', unauthorized: false };
    this.#client.end(true);
    // end() does nothing while an earlier graceful end() waits for PUBACKs: drop the socket anyway.
    this.#client.stream?.destroy();
  }
}
