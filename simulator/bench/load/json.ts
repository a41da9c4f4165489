/**
 * JSON telemetry load (issue 17): devices of type `climate` sending `{"temperature", "humidity",
 * "battery"}` messages, each answered by the gateway only once its readings are safe. Counted by
 * those answers: MQTT PUBACKs (QoS 1 on devices/{id}/telemetry/json, with seq: exactly once) or
 * HTTP 202s (POST /api/devices/{id}/telemetry, keep-alive, without seq: at least once). Each device
 * keeps `inFlight` messages (MQTT) or connections with one request each (HTTP) unanswered at most.
 */
import { createConnection, type Socket } from 'node:net';
import { fleetToken } from '../../../devices/token.js';
import { connectMqtt, MQTT_TYPE, MqttPacketCounter } from '../mqtt-wire.js';

export const JSON_READINGS = 3;

export interface JsonLoadOptions {
  host: string;
  port: number;
  fleetKey: string;
  devices: number;
  inFlight: number;
}

export interface JsonLoadStats {
  sent: number;
  answered: number;
  refused: number;
  closed: number;
}

const jsonDeviceId = (i: number): string => `climate-json-${String(i).padStart(5, '0')}`;

function message(seq: number | undefined, epoch: number): string {
  const values = `{"temperature":${(20 + (seq ?? 0) % 10).toFixed(1)},"humidity":${40 + ((seq ?? 0) % 20)},"battery":99.5}`;
  return seq === undefined ? values : `{"seq":${seq},"epoch":${epoch},"values":${values}}`;
}

/** A QoS 1 PUBLISH of `payload` to `topic` with packet id `id`. */
function publishPacket(topic: Buffer, payload: string, id: number): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const rl = 2 + topic.length + 2 + body.length;
  const lenBytes: number[] = [];
  let n = rl;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    lenBytes.push(b);
  } while (n > 0);
  const out = Buffer.allocUnsafe(1 + lenBytes.length + rl);
  let p = 0;
  out[p++] = 0x32;
  for (const b of lenBytes) out[p++] = b;
  out.writeUInt16BE(topic.length, p);
  p += 2;
  topic.copy(out, p);
  p += topic.length;
  out.writeUInt16BE(id, p);
  p += 2;
  body.copy(out, p);
  return out;
}

/** What both loads share: their sockets, each with a pump that writes while the load runs. */
abstract class SocketLoad {
  protected readonly sockets: Socket[] = [];
  protected readonly pumps: (() => void)[] = [];
  protected running = false;
  sent = 0;
  closed = 0;

  start(): void {
    this.running = true;
    for (const p of this.pumps) p();
  }

  stop(): void {
    this.running = false;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
  }

  abstract stats(): JsonLoadStats;
}

export class JsonMqttLoad extends SocketLoad {
  private readonly counters: MqttPacketCounter[] = [];

  static async connect(o: JsonLoadOptions): Promise<JsonMqttLoad> {
    const l = new JsonMqttLoad();
    const epoch = (Date.now() & 0x7fffffff) >>> 0;
    await Promise.all(
      Array.from({ length: o.devices }, async (_, i) => {
        const id = jsonDeviceId(i);
        const s = await connectMqtt({ host: o.host, port: o.port, clientId: id, username: id, password: fleetToken(o.fleetKey, id) });
        const topic = Buffer.from(`devices/${id}/telemetry/json`);
        let seq = 0;
        let packetId = 0;
        let outstanding = 0;
        const pump = () => {
          if (!l.running) return;
          const parts: Buffer[] = [];
          while (outstanding < o.inFlight) {
            packetId = (packetId % 65535) + 1;
            parts.push(publishPacket(topic, message(seq++, epoch), packetId));
            outstanding++;
          }
          if (parts.length > 0) {
            l.sent += parts.length;
            s.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
          }
        };
        const counter = new MqttPacketCounter();
        let pubacks = 0;
        s.on('data', (c: Buffer) => {
          counter.feed(c);
          const now = counter.byType[MQTT_TYPE.puback]!;
          outstanding -= now - pubacks;
          pubacks = now;
          pump();
        });
        s.on('error', () => {});
        s.on('close', () => l.closed++);
        l.sockets.push(s);
        l.counters.push(counter);
        l.pumps.push(pump);
      }),
    );
    return l;
  }

  stats(): JsonLoadStats {
    let answered = 0;
    for (const c of this.counters) answered += c.byType[MQTT_TYPE.puback]!;
    return { sent: this.sent, answered, refused: 0, closed: this.closed };
  }
}

/**
 * HTTP/1.1 keep-alive on raw sockets (Node's http client costs more CPU per request than the
 * gateway does): each connection writes one POST, reads its answer's status line, writes the next.
 * The answers are small and not pipelined, so each one arrives whole in one read.
 */
export class JsonHttpLoad extends SocketLoad {
  answered = 0;
  refused = 0;

  static async connect(o: JsonLoadOptions): Promise<JsonHttpLoad> {
    const l = new JsonHttpLoad();
    await Promise.all(
      Array.from({ length: o.devices * o.inFlight }, async (_, k) => {
        const id = jsonDeviceId(k % o.devices);
        const body = message(undefined, 0);
        const req = Buffer.from(
          `POST /api/devices/${id}/telemetry HTTP/1.1\r\nhost: ${o.host}:${o.port}\r\nauthorization: Bearer ${fleetToken(o.fleetKey, id)}\r\n` +
            `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        const s = await new Promise<Socket>((resolve, reject) => {
          const c = createConnection({ host: o.host, port: o.port }, () => resolve(c));
          c.once('error', reject);
        });
        s.setNoDelay(true);
        const pump = () => {
          if (!l.running) return;
          l.sent++;
          s.write(req);
        };
        s.on('data', (c: Buffer) => {
          // "HTTP/1.1 202 …": the status is at bytes 9–11 of each answer.
          for (let i = c.indexOf('HTTP/1.1 '); i !== -1; i = c.indexOf('HTTP/1.1 ', i + 9)) {
            if (c[i + 9] === 0x32 && c[i + 10] === 0x30 && c[i + 11] === 0x32) l.answered++;
            else l.refused++;
          }
          pump();
        });
        s.on('error', () => {});
        s.on('close', () => l.closed++);
        l.sockets.push(s);
        l.pumps.push(pump);
      }),
    );
    return l;
  }

  stats(): JsonLoadStats {
    return { sent: this.sent, answered: this.answered, refused: this.refused, closed: this.closed };
  }
}
