/**
 * MQTT 3.1.1 rules where the server MUST close the connection and aedes 1.2 / mqtt-packet 9 do not:
 * they decode strings with Buffer#toString, so U+0000 passes and ill-formed UTF-8 becomes U+FFFD
 * (flagged here; a literal U+FFFD, which no device needs, is refused too).
 */
import type { ConnectPacket } from 'aedes';
import { parseUplink } from './topics.js';

export function badString(s: unknown): boolean {
  return typeof s === 'string' && (s.includes('\u0000') || s.includes('\uFFFD'));
}

/** Why this CONNECT must be refused by closing, or undefined. */
export function badConnect(packet: ConnectPacket): string | undefined {
  if (badString(packet.clientId)) return 'invalid UTF-8 or U+0000 in the client id [MQTT-1.5.3-1/2]';
  if (packet.username !== undefined && badString(packet.username)) return 'invalid UTF-8 or U+0000 in the user name [MQTT-1.5.3-1/2]';
  if (packet.password !== undefined && packet.username === undefined) return 'password flag without user name flag [MQTT-3.1.2-22]';
  const will = packet.will;
  if (will) {
    if ((will.qos as number) > 2) return 'Will QoS 3 [MQTT-3.1.2-14]';
    if (badString(will.topic)) return 'invalid UTF-8 or U+0000 in the will topic [MQTT-1.5.3-1/2]';
    if (will.topic.length === 0 || /[#+]/.test(will.topic)) return 'wildcards or an empty will topic [MQTT-3.3.2-2]';
  }
  return undefined;
}

/**
 * A device's will may go to its own topics other than its uplinks (which would be taken as data)
 * and its commands topic (which would reach the device itself), e.g. devices/{id}/status.
 */
export function willAllowed(deviceId: string, topic: string): boolean {
  const prefix = `devices/${deviceId}/`;
  return topic.startsWith(prefix) && parseUplink(topic) === undefined && topic !== `${prefix}commands`;
}

// Raw packet bodies the socket guard reads whole (CONNECT once per connection, SUBSCRIBE and
// UNSUBSCRIBE: rare packets, never the telemetry path). aedes 1.2 accepts every case below.

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** What a CONNECT's bytes ask of the broker: close at once, or answer CONNACK 1 and close. */
export type ConnectVerdict = { close: string } | { unsupportedLevel: string } | { mqtt31: { flagsAt: number } } | undefined;

function u16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

/** Offset just after the length-prefixed field at p, or -1 when the body ends inside it. */
function skipField(b: Uint8Array, p: number): number {
  if (p + 2 > b.length) return -1;
  const end = p + 2 + u16(b, p);
  return end > b.length ? -1 : end;
}

/**
 * Checks a CONNECT body (after the fixed header). `headerFlags` are the low 4 bits of its first
 * byte. MQTT 3.1.1 ("MQTT", level 4) must have them and connect-flags bit 0 clear and end exactly
 * after its last field [MQTT-2.2.2-2, 3.1.2-3]; any other level of a known protocol gets CONNACK 1
 * [MQTT-3.1.2-2]; MQTT 3.1 ("MQIsdp", level 3) leaves those bits unused, so they are ignored
 * (`mqtt31.flagsAt`: where the connect flags are, for the guard to clear the bit aedes refuses).
 */
export function checkConnect(b: Uint8Array, headerFlags: number): ConnectVerdict {
  const nameEnd = skipField(b, 0);
  if (nameEnd === -1 || nameEnd + 4 > b.length) return { close: 'CONNECT too short for its variable header' };
  const name = Buffer.from(b.buffer, b.byteOffset + 2, nameEnd - 2).toString('latin1');
  if (name !== 'MQTT' && name !== 'MQIsdp') return { close: `unknown protocol name "${name.slice(0, 16)}" [MQTT-3.1.2-1]` };
  const level = b[nameEnd]!;
  const v31 = name === 'MQIsdp' && level === 3;
  if (!v31 && !(name === 'MQTT' && level === 4)) return { unsupportedLevel: `protocol ${name} level ${level} is not supported (MQTT 3.1.1 or 3.1 only) [MQTT-3.1.2-2]` };
  const flagsAt = nameEnd + 1;
  const flags = b[flagsAt]!;
  if (!v31 && headerFlags !== 0) return { close: 'reserved CONNECT header flags set [MQTT-2.2.2-2]' };
  if (!v31 && (flags & 1) !== 0) return { close: 'reserved connect flag bit 0 set [MQTT-3.1.2-3]' };
  let p = skipField(b, flagsAt + 3); // client id, after the keepalive
  if (p !== -1 && (flags & 0x04) !== 0) p = skipField(b, skipField(b, p)); // will topic, will message
  if (p !== -1 && (flags & 0x80) !== 0) p = skipField(b, p); // user name
  if (p !== -1 && (flags & 0x40) !== 0) p = skipField(b, p); // password
  if (p === -1) return { close: 'CONNECT ends inside a field' };
  if (p !== b.length) return { close: `${b.length - p} bytes after the last CONNECT field [MQTT-3.1.3]` };
  return v31 ? { mqtt31: { flagsAt } } : undefined;
}

/** Why a topic filter breaks MQTT 3.1.1 §4.7, or undefined. */
export function badFilter(f: string): string | undefined {
  if (f.length === 0) return 'an empty topic filter [MQTT-4.7.3-1]';
  if (f.includes('\u0000')) return 'U+0000 in a topic filter [MQTT-4.7.3-2]';
  const levels = f.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return `"#" not alone in the last level of "${f.slice(0, 64)}" [MQTT-4.7.1-2]`;
    if (l.includes('+') && l !== '+') return `"+" not alone in a level of "${f.slice(0, 64)}" [MQTT-4.7.1-3]`;
  }
  return undefined;
}

/**
 * Checks a SUBSCRIBE (`subscribe` true) or UNSUBSCRIBE body: packet id not 0 [MQTT-2.3.1-1], at
 * least one filter [MQTT-3.8.3-3, 3.10.3-2], each well-formed UTF-8 and a valid filter, and (for
 * SUBSCRIBE) each followed by a requested QoS ≤ 2 with the reserved bits clear [MQTT-3.8.3-4].
 */
export function checkSubscribe(b: Uint8Array, subscribe: boolean): string | undefined {
  if (b.length < 2) return 'no packet id';
  if (u16(b, 0) === 0) return 'packet id 0 [MQTT-2.3.1-1]';
  let p = 2;
  if (p === b.length) return 'no topic filter [MQTT-3.8.3-3, 3.10.3-2]';
  while (p < b.length) {
    const end = skipField(b, p);
    if (end === -1) return 'the packet ends inside a topic filter';
    let f: string;
    try {
      f = fatalUtf8.decode(b.subarray(p + 2, end));
    } catch {
      return 'ill-formed UTF-8 in a topic filter [MQTT-1.5.3-1]';
    }
    const bad = badFilter(f);
    if (bad) return bad;
    p = end;
    if (subscribe) {
      if (p >= b.length) return 'a topic filter without its QoS byte';
      if (b[p]! > 2) return `requested QoS byte 0x${b[p]!.toString(16)} [MQTT-3.8.3-4]`;
      p++;
    }
  }
  return undefined;
}

/**
 * aedes checks a PUBLISH's topic name itself, before authorizePublish, and closes the connection
 * with a plain Error (its text is all there is): the refusal each of those is, so it is counted and
 * logged like the others, or undefined for any other client error (a reset connection refuses nothing).
 */
export function aedesPublishRefusal(message: string): ['MQTT_MALFORMED_PACKET' | 'MQTT_FOREIGN_TOPIC' | 'MQTT_QOS2_UNRELEASED', string] | undefined {
  // aedes's maxInflightInbound (default 1,000): a client that never sends PUBREL would grow the broker's store of QoS 2 packets.
  if (message.startsWith('maxInflightInbound exceeded')) {
    const limit = /exceeded: (\d+)/.exec(message)?.[1] ?? '1000';
    return ['MQTT_QOS2_UNRELEASED', `over ${limit} QoS 2 PUBLISHes awaiting their PUBREL (the client never sent PUBREL after our PUBREC): connection closed. Publish telemetry at QoS 1 (devices/PROTOCOL.md), or fix the client to answer each PUBREC with PUBREL`];
  }
  switch (message) {
    case 'empty topic not allowed in PUBLISH':
      return ['MQTT_MALFORMED_PACKET', 'a PUBLISH with an empty topic name [MQTT-4.7.3-1]: connection closed'];
    case '# is not allowed in PUBLISH':
    case '+ is not allowed in PUBLISH':
      return ['MQTT_MALFORMED_PACKET', `a PUBLISH topic name with the wildcard ${message[0]} [MQTT-3.3.2-2]: connection closed`];
    case 'topic has too many levels':
      return ['MQTT_FOREIGN_TOPIC', 'published to a topic of over 100 levels, outside the device\'s topics: connection closed'];
  }
  return undefined;
}

/** Why a PUBLISH must close the connection before anything acts on it, or undefined. */
export function badPublish(packet: { topic: string; qos: number; messageId?: number | undefined }): string | undefined {
  if (badString(packet.topic)) return 'invalid UTF-8 or U+0000 in the topic name [MQTT-1.5.3-1/2]';
  if (packet.qos > 0 && !packet.messageId) return `QoS ${packet.qos} PUBLISH with packet id 0 [MQTT-2.3.1-1]`;
  return undefined;
}
