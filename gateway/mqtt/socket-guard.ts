/**
 * What the embedded broker's sockets get before aedes sees them:
 *  - reads capped at ~1 KiB (but always at least one whole MQTT packet): aedes dispatches every
 *    packet of a read at once, so a 64 KiB read is ~700 messages in flight per client;
 *  - writes coalesced to one syscall per socket per loop turn (mqtt-packet uncorks per packet);
 *  - packet checks on the raw bytes that aedes 1.2 skips: the first packet must be CONNECT (a
 *    non-MQTT byte stream is dropped at once), no packet over the size limit (checked from the
 *    fixed header, before the body is buffered), PUBACK/PUBREC/PUBREL/PUBCOMP of remaining
 *    length 2 with a packet id other than 0, PINGREQ/DISCONNECT of 0, no PUBACK for a packet id
 *    the broker never sent, and whole-body checks of the rare packets (CONNECT: protocol level,
 *    reserved bits, excess bytes; SUBSCRIBE/UNSUBSCRIBE: packet id, filters; see strict.ts).
 *    Telemetry PUBLISH packets are only counted by their fixed header here.
 */
import type { Socket } from 'node:net';
import { checkConnect, checkSubscribe } from './strict.js';

export interface GuardOptions {
  readCap: number;
  maxPacketBytes: number;
  onViolation(code: 'MQTT_NOT_MQTT' | 'MQTT_PACKET_TOO_LARGE' | 'MQTT_MALFORMED_PACKET' | 'MQTT_UNSOLICITED_PUBACK' | 'MQTT_UNSUPPORTED_PROTOCOL', reason: string): void;
  /** The device PUBACKed a QoS 1 PUBLISH the broker sent it (a command). */
  onPuback?(packetId: number): void;
}

const CONNECT = 1;
const PUBLISH = 3;
const PUBACK = 4;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;

export function guardSocket(sock: Socket, opts: GuardOptions): void {
  sock.setNoDelay(true);
  coalesceWrites(sock);
  const outstanding = trackOutboundQos1(sock);
  capReads(sock, opts, outstanding);
}

function coalesceWrites(sock: Socket): void {
  const realUncork = sock.uncork.bind(sock);
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    while (sock.writableCorked > 0) realUncork();
  };
  sock.uncork = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  // aedes writes a last packet (a refusing CONNACK) and destroys the socket: flush it first.
  const realDestroy = sock.destroy.bind(sock);
  sock.destroy = (err?: Error) => {
    if (sock.writableCorked > 0 && !sock.destroyed) flush();
    return realDestroy(err);
  };
}

/** Packet ids of QoS 1 PUBLISH packets written to the device and not yet acknowledged. */
function trackOutboundQos1(sock: Socket): Set<number> {
  const outstanding = new Set<number>();
  const realWrite = sock.write.bind(sock) as (chunk: unknown, enc?: unknown, cb?: unknown) => boolean;
  // A scanner over what mqtt-packet writes: fixed header, then (for QoS 1 PUBLISH) topic length,
  // topic and packet id; everything else is skipped by length.
  let st = 0;
  let rl = 0;
  let mul = 1;
  let hb = 0;
  let b0 = 0;
  let pos = 0;
  let topicLen = 0;
  let owe = 0;
  let id = 0;
  let track = false;
  sock.write = ((chunk: unknown, enc?: unknown, cb?: unknown) => {
    if (typeof chunk === 'string' && st === 2) {
      // mqtt-packet writes the topic as a string: inside a body only its byte length matters.
      const n = Buffer.byteLength(chunk, typeof enc === 'string' ? (enc as BufferEncoding) : 'utf8');
      if (track) pos += n;
      owe -= n;
      if (owe <= 0) {
        st = 0;
        track = false;
      }
      return realWrite(chunk, enc, cb);
    }
    const b = typeof chunk === 'string' ? Buffer.from(chunk, typeof enc === 'string' ? (enc as BufferEncoding) : 'utf8') : (chunk as Uint8Array);
    if (b instanceof Uint8Array) {
      const n = b.length;
      let i = 0;
      while (i < n) {
        if (st === 0) {
          b0 = b[i++]!;
          st = 1;
          rl = 0;
          mul = 1;
          hb = 0;
        } else if (st === 1) {
          const c = b[i++]!;
          rl += (c & 0x7f) * mul;
          mul *= 128;
          hb++;
          if ((c & 0x80) === 0 || hb >= 4) {
            track = b0 >> 4 === PUBLISH && ((b0 >> 1) & 3) === 1;
            st = rl === 0 ? 0 : 2;
            owe = rl;
            pos = 0;
            topicLen = 0;
            id = 0;
          }
        } else if (track) {
          const c = b[i++]!;
          owe--;
          if (pos < 2) topicLen = (topicLen << 8) | c;
          else if (pos >= 2 + topicLen && pos < 4 + topicLen) {
            id = (id << 8) | c;
            if (pos === 3 + topicLen) {
              outstanding.add(id);
              track = false;
            }
          }
          pos++;
          if (owe === 0) st = 0;
        } else {
          const k = Math.min(owe, n - i);
          i += k;
          owe -= k;
          if (owe === 0) st = 0;
        }
      }
    }
    return realWrite(chunk, enc, cb);
  }) as typeof sock.write;
  return outstanding;
}

type ViolationCode = Parameters<GuardOptions['onViolation']>[0];

// CONNACK return code 1, "unacceptable protocol version" (MQTT 3.1.1 §3.2.2.3).
const CONNACK_UNSUPPORTED = Buffer.from([0x20, 0x02, 0x00, 0x01]);

function capReads(sock: Socket, opts: GuardOptions, outstanding: Set<number>): void {
  const realRead = sock.read.bind(sock);
  // Scanner state: mode 0 = expecting a packet's first byte, 1 = in the remaining-length varint,
  // 2 = in the body (`owe` bytes left).
  let mode = 0;
  let rl = 0;
  let mul = 1;
  let hb = 0;
  let b0 = 0;
  let owe = 0;
  let packets = 0;
  let violation: { code: ViolationCode; reason: string; connack?: Buffer } | undefined;
  let reported = false;
  // The packet id of a PUBACK/PUBREC/PUBREL/PUBCOMP: idPos = bytes of it read, -1 = not reading.
  let idPos = -1;
  let id = 0;
  // Whole bodies of the rare packets checked in full (CONNECT, SUBSCRIBE, UNSUBSCRIBE).
  let body: Uint8Array | undefined;
  let got = 0;
  // Where the CONNECT's first byte is, so an MQTT 3.1 CONNECT can be normalised for aedes.
  let connectChunk: Buffer | undefined;
  let connectAt = 0;
  let current: Buffer | undefined;

  const fail = (code: ViolationCode, reason: string, connack?: Buffer) => {
    violation ??= { code, reason, connack };
  };

  const header = (first: number, length: number) => {
    const type = first >> 4;
    if (packets === 0 && type !== CONNECT) return fail('MQTT_NOT_MQTT', `the first packet is type ${type}, not CONNECT`);
    if (type === CONNECT && packets > 0) return fail('MQTT_MALFORMED_PACKET', 'a second CONNECT [MQTT-3.1.0-2]');
    if (length > opts.maxPacketBytes) return fail('MQTT_PACKET_TOO_LARGE', `a ${length}-byte packet; the limit is ${opts.maxPacketBytes}`);
    if (type >= 4 && type <= 7 && length !== 2) return fail('MQTT_MALFORMED_PACKET', `remaining length ${length} for packet type ${type}`);
    if ((type === 12 || type === 14) && length !== 0) return fail('MQTT_MALFORMED_PACKET', `remaining length ${length} for packet type ${type}`);
    if (type >= 4 && type <= 7) {
      idPos = 0;
      id = 0;
    } else if (type === CONNECT || type === SUBSCRIBE || type === UNSUBSCRIBE) {
      body = new Uint8Array(length);
      got = 0;
      if (length === 0) done(first);
    }
  };

  /** A packet whose id or body the guard read is complete: the checks that need all of it. */
  const done = (first: number) => {
    const type = first >> 4;
    if (idPos === 2) {
      idPos = -1;
      if (id === 0) return fail('MQTT_MALFORMED_PACKET', `packet id 0 in packet type ${type} [MQTT-2.3.1-1]`);
      if (type === PUBACK) {
        if (!outstanding.delete(id)) return fail('MQTT_UNSOLICITED_PUBACK', `PUBACK for packet id ${id}, which the broker never sent`);
        if (violation === undefined) opts.onPuback?.(id);
      }
      return;
    }
    const b = body;
    if (b === undefined) return;
    body = undefined;
    if (type !== CONNECT) {
      const bad = checkSubscribe(b, type === SUBSCRIBE);
      if (bad) fail('MQTT_MALFORMED_PACKET', `${type === SUBSCRIBE ? 'SUBSCRIBE' : 'UNSUBSCRIBE'}: ${bad}`);
      return;
    }
    const v = checkConnect(b, first & 0x0f);
    if (v === undefined) return;
    if ('close' in v) return fail('MQTT_MALFORMED_PACKET', v.close);
    if ('unsupportedLevel' in v) return fail('MQTT_UNSUPPORTED_PROTOCOL', v.unsupportedLevel, CONNACK_UNSUPPORTED);
    // MQTT 3.1 leaves these bits unused (a 3.1 broker ignores them); aedes refuses them, so clear
    // them in the bytes it is about to parse. Only when the CONNECT came in one read (it always
    // does from a real device); else it is closed rather than half-normalised.
    const chunk = connectChunk;
    const flagsAt = connectAt + 1 + hb + v.mqtt31.flagsAt;
    if (chunk === undefined || chunk !== current || flagsAt >= chunk.length) {
      if ((first & 0x0f) !== 0 || (b[v.mqtt31.flagsAt]! & 1) !== 0) fail('MQTT_MALFORMED_PACKET', 'an MQTT 3.1 CONNECT with reserved bits, split across reads');
      return;
    }
    chunk[connectAt] = 0x10;
    chunk[flagsAt] = chunk[flagsAt]! & 0xfe;
  };

  /** Scans b; returns how many whole packets it completed. */
  const scan = (b: Buffer): number => {
    let completed = 0;
    let i = 0;
    current = b;
    const n = b.length;
    while (i < n && violation === undefined) {
      if (mode === 2) {
        const k = Math.min(owe, n - i);
        if (idPos >= 0) {
          for (let j = 0; j < k && idPos < 2; j++, idPos++) id = (id << 8) | b[i + j]!;
        } else if (body !== undefined) {
          body.set(b.subarray(i, i + k), got);
          got += k;
        }
        i += k;
        owe -= k;
        if (owe === 0) {
          mode = 0;
          completed++;
          if (idPos >= 0 || body !== undefined) done(b0);
          packets++;
        }
      } else if (mode === 0) {
        if (packets === 0) {
          connectChunk = b;
          connectAt = i;
        }
        b0 = b[i++]!;
        mode = 1;
        rl = 0;
        mul = 1;
        hb = 0;
      } else {
        const c = b[i++]!;
        rl += (c & 0x7f) * mul;
        mul *= 128;
        hb++;
        if ((c & 0x80) === 0 || hb >= 4) {
          if ((c & 0x80) !== 0) fail('MQTT_MALFORMED_PACKET', 'remaining length longer than 4 bytes');
          header(b0, rl);
          if (rl === 0) {
            mode = 0;
            completed++;
            packets++;
          } else {
            mode = 2;
            owe = rl;
          }
        }
      }
    }
    if (packets > 0) connectChunk = undefined;
    return completed;
  };

  const checked = (b: Buffer | null): Buffer | null => {
    if (!violation) return b;
    if (!reported) {
      reported = true;
      opts.onViolation(violation.code, violation.reason);
      const answer = violation.connack;
      if (answer) {
        // The refusal the spec asks for, then close; aedes never sees the packet.
        sock.end(answer, () => sock.destroy());
        setTimeout(() => sock.destroy(), 2000).unref();
      } else sock.destroy();
    }
    return null;
  };

  sock.read = ((n?: number) => {
    if (n !== undefined && n !== null) return realRead(n);
    if (sock.destroyed || reported) return null;
    if (sock.readableLength <= opts.readCap) {
      const b = realRead() as Buffer | null;
      if (b !== null) scan(b);
      return checked(b);
    }
    let b = realRead(opts.readCap) as Buffer | null;
    if (b === null) return null;
    let parts: Buffer[] | undefined;
    // No whole packet in this slice: hand over the rest of the current one too, so aedes always
    // completes at least one packet per read (else it would never read again).
    for (let guard = 0; scan(b) === 0 && violation === undefined && sock.readableLength > 0 && guard < 8; guard++) {
      parts ??= [b];
      const more = Math.min(mode === 2 ? owe : 1, sock.readableLength);
      b = realRead(more) as Buffer | null;
      if (b === null) break;
      parts.push(b);
    }
    return checked(parts ? Buffer.concat(parts) : b);
  }) as typeof sock.read;
}
