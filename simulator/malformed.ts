/**
 * --malformed: bad frames the gateway must refuse. A gateway closes a connection that sends one
 * (error frame, then close 4400; over MQTT it disconnects the client), and the SDK does not
 * reconnect after a 44xx close, so the bad bytes never travel on a device's own connection: each
 * goes on a separate short-lived connection of the sibling id `chaos-<device id>` (authenticated
 * with its own fleet token; its type is unknown to the gateway, so dashboards do not mix it with
 * real sensors). The gateway counts every one under its FRAME_* code, in its totals
 * (ingest.stats.errorsByCode, /metrics) and on the sibling (GET /api/devices/chaos-<id>).
 */
import { connect as mqttConnect } from 'mqtt';
import { WebSocket } from 'ws';
import { encodeTelemetry } from '../devices/codec/encode.js';
import { brokerOptions, deviceTopics, deviceUrl } from '../devices/sdk/index.js';
import { fleetToken } from '../devices/token.js';
import type { FleetCounters } from './counters.js';
import type { TransportName } from './options.js';

/** A raw connection that has not finished after this long is dropped. */
const RAW_TIMEOUT_MS = 5000;

/** The kinds of bad frame, in turn: what the gateway answers is in the comment. */
export function malformedFrame(kind: number, time: number): Uint8Array {
  const good = encodeTelemetry({ epoch: 1, seq: kind, timestamp: time }, [{ channel: 1, value: 1.5, type: 'f32' }]);
  switch (kind % 4) {
    case 0: // FRAME_TRUNCATED: the header stops halfway
      return good.subarray(0, 12);
    case 1: {
      // FRAME_BAD_VERSION
      const f = good.slice();
      f[0] = 0x7e;
      return f;
    }
    case 2: {
      // FRAME_UNKNOWN_TYPE
      const f = good.slice();
      f[1] = 0x42;
      return f;
    }
    default: {
      // FRAME_VALUE_OUT_OF_RANGE: the f32 is a NaN (header 20 + count 2 + channel + tag)
      const f = good.slice();
      new DataView(f.buffer).setUint32(24, 0x7fc00000, true);
      return f;
    }
  }
}

export function chaosId(deviceId: string): string {
  return `chaos-${deviceId}`;
}

export class MalformedSender {
  readonly #busy = new Set<string>();
  readonly #open = new Set<{ stop(): void }>();
  #kind = 0;

  constructor(
    private readonly transport: TransportName,
    private readonly url: string,
    private readonly fleetKey: string,
    private readonly counters: FleetCounters,
  ) {}

  /** Sends one bad frame as chaos-<deviceId>; false (nothing sent) while that sibling's last one is still open. */
  send(deviceId: string): boolean {
    const id = chaosId(deviceId);
    if (this.#busy.has(id)) return false;
    this.#busy.add(id);
    const frame = malformedFrame(this.#kind++, Date.now());
    const token = fleetToken(this.fleetKey, id);
    const handle = this.transport === 'ws' ? this.#ws(id, token, frame) : this.#mqtt(id, token, frame);
    this.#open.add(handle);
    this.counters.malformed++;
    return true;
  }

  /** Drops every raw connection still open. */
  close(): void {
    for (const h of this.#open) h.stop();
    this.#open.clear();
    this.#busy.clear();
  }

  #done(id: string, handle: { stop(): void }, timer: ReturnType<typeof setTimeout>): void {
    clearTimeout(timer);
    this.#busy.delete(id);
    this.#open.delete(handle);
  }

  #ws(id: string, token: string, frame: Uint8Array): { stop(): void } {
    const ws = new WebSocket(deviceUrl(this.url, id), { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const handle = { stop: () => ws.terminate() };
    const timer = setTimeout(() => ws.terminate(), RAW_TIMEOUT_MS);
    ws.on('open', () => ws.send(frame, { binary: true }));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
    });
    ws.on('close', () => this.#done(id, handle, timer));
    return handle;
  }

  #mqtt(id: string, token: string, frame: Uint8Array): { stop(): void } {
    const client = mqttConnect({
      ...brokerOptions(this.url),
      clientId: id,
      username: id,
      password: token,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: RAW_TIMEOUT_MS,
      log: () => {},
    });
    const handle = { stop: () => client.end(true) };
    const timer = setTimeout(() => client.end(true), RAW_TIMEOUT_MS);
    client.on('connect', () => client.publish(deviceTopics(id).telemetry, Buffer.from(frame), { qos: 0 }));
    client.on('error', () => {});
    client.on('close', () => {
      client.end(true);
      this.#done(id, handle, timer);
    });
    return handle;
  }
}
