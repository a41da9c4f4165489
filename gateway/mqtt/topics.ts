/** The MQTT topic contract (DESIGN.md "Interfaces people touch"). */

export const telemetryTopic = (id: string): string => `devices/${id}/telemetry`;
/** JSON telemetry (gateway/json/): `{"temperature": 21.5}` or `{"ts", "seq", "epoch", "values"}`. */
export const jsonTelemetryTopic = (id: string): string => `devices/${id}/telemetry/json`;
export const commandsTopic = (id: string): string => `devices/${id}/commands`;
export const resultsTopic = (id: string): string => `devices/${id}/results`;
/** Alarm changes of a device, for integrations (gateway → subscribers, QoS 1; README "Alarms"). */
export const alarmsTopic = (id: string): string => `alarms/${id}`;
/** The MQTT username an integration connects with, the operator token as password ('$' is in no device id). */
export const OPERATOR_USERNAME = '$operator';

/** Topic filters an integration may subscribe to: `alarms/#`, `alarms/+` or `alarms/<device id>`. */
export function isAlarmsFilter(filter: string): boolean {
  return filter === 'alarms/#' || filter === 'alarms/+' || /^alarms\/[A-Za-z0-9._:-]{1,128}$/.test(filter);
}

export type UplinkKind = 'telemetry' | 'results' | 'json';

/** Parses `devices/{id}/telemetry|results|telemetry/json`; undefined for any other topic. */
export function parseUplink(topic: string): { id: string; kind: UplinkKind } | undefined {
  if (!topic.startsWith('devices/')) return undefined;
  const slash = topic.indexOf('/', 8);
  if (slash === -1) return undefined;
  const kind = topic.slice(slash + 1);
  if (kind === 'telemetry' || kind === 'results') return { id: topic.slice(8, slash), kind };
  if (kind === 'telemetry/json') return { id: topic.slice(8, slash), kind: 'json' };
  return undefined;
}

/**
 * Pre-encodes an MQTT QoS 0 PUBLISH to `topic` around a payload: the gateway's acks and error frames
 * go to a device this way, straight onto its socket, without the broker's routing.
 */
export function qos0Publish(topic: Buffer, payload: Uint8Array): Buffer {
  return publishPacket(topic, payload, 0);
}

/** A QoS 1 PUBLISH with the given packet id (1 … 65535): commands, whose PUBACK the gateway matches itself. */
export function qos1Publish(topic: Buffer, payload: Uint8Array, packetId: number): Buffer {
  return publishPacket(topic, payload, packetId);
}

function publishPacket(topic: Buffer, payload: Uint8Array, packetId: number): Buffer {
  const body = 2 + topic.length + (packetId > 0 ? 2 : 0) + payload.byteLength;
  let lenBytes = 1;
  for (let n = body; n > 127; n = Math.floor(n / 128)) lenBytes++;
  const out = Buffer.allocUnsafe(1 + lenBytes + body);
  let p = 0;
  out[p++] = packetId > 0 ? 0x32 : 0x30;
  let n = body;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out[p++] = b;
  } while (n > 0);
  out[p++] = topic.length >> 8;
  out[p++] = topic.length & 0xff;
  topic.copy(out, p);
  p += topic.length;
  if (packetId > 0) {
    out[p++] = packetId >> 8;
    out[p++] = packetId & 0xff;
  }
  out.set(payload, p);
  return out;
}
