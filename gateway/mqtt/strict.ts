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
