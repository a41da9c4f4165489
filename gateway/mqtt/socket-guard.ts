/**
 * What the embedded broker's sockets get before aedes sees them:
 *  - reads capped at ~1 KiB (but always at least one whole MQTT packet): aedes dispatches every
 *    packet of a read at once, so a 64 KiB read is ~700 messages in flight per client;
 *  - writes coalesced to one syscall per socket per loop turn (mqtt-packet uncorks per packet);
 *  - packet checks on the raw bytes that aedes 1.2 skips: the first packet must be CONNECT (a
 *    non-MQTT byte stream is dropped at once), no packet over the size limit (checked from the
 *    fixed header, before the body is buffered), PUBACK/PUBREC/PUBREL/PUBCOMP of remaining
 *    length 2 and PINGREQ/DISCONNECT of 0, and no PUBACK for a packet id the broker never sent.
 */
import type { Socket } from 'node:net';

export interface GuardOptions {
  readCap: number;
  maxPacketBytes: number;
  onViolation(code: 'MQTT_NOT_MQTT' | 'MQTT_PACKET_TOO_LARGE' | 'MQTT_MALFORMED_PACKET' | 'MQTT_UNSOLICITED_PUBACK', reason: string): void;
}

const CONNECT = 1;
const PUBLISH = 3;
const PUBACK = 4;

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
  let violation: { code: Parameters<GuardOptions['onViolation']>[0]; reason: string } | undefined;
  let ackPos = -1;
  let ackId = 0;

  const fail = (code: Parameters<GuardOptions['onViolation']>[0], reason: string) => {
    violation ??= { code, reason };
  };

  const header = (first: number, length: number) => {
    const type = first >> 4;
    if (packets === 0 && type !== CONNECT) return fail('MQTT_NOT_MQTT', `the first packet is type ${type}, not CONNECT`);
    if (type === CONNECT && first !== 0x10) return fail('MQTT_MALFORMED_PACKET', 'reserved CONNECT flags');
    if (length > opts.maxPacketBytes) return fail('MQTT_PACKET_TOO_LARGE', `a ${length}-byte packet; the limit is ${opts.maxPacketBytes}`);
    if (type >= 4 && type <= 7 && length !== 2) return fail('MQTT_MALFORMED_PACKET', `remaining length ${length} for packet type ${type}`);
    if ((type === 12 || type === 14) && length !== 0) return fail('MQTT_MALFORMED_PACKET', `remaining length ${length} for packet type ${type}`);
    if (type === PUBACK) {
      ackPos = 0;
      ackId = 0;
    }
  };

  /** Scans b; returns how many whole packets it completed. */
  const scan = (b: Buffer): number => {
    let done = 0;
    let i = 0;
    const n = b.length;
    while (i < n && violation === undefined) {
      if (mode === 2) {
        const k = Math.min(owe, n - i);
        if (ackPos >= 0) {
          for (let j = 0; j < k && ackPos < 2; j++, ackPos++) ackId = (ackId << 8) | b[i + j]!;
          if (ackPos === 2) {
            ackPos = -1;
            if (!outstanding.delete(ackId)) fail('MQTT_UNSOLICITED_PUBACK', `PUBACK for packet id ${ackId}, which the broker never sent`);
          }
        }
        i += k;
        owe -= k;
        if (owe === 0) {
          mode = 0;
          done++;
          packets++;
        }
      } else if (mode === 0) {
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
            done++;
            packets++;
          } else {
            mode = 2;
            owe = rl;
          }
        }
      }
    }
    return done;
  };

  const checked = (b: Buffer | null): Buffer | null => {
    if (violation) {
      opts.onViolation(violation.code, violation.reason);
      sock.destroy();
      return null;
    }
    return b;
  };

  sock.read = ((n?: number) => {
    if (n !== undefined && n !== null) return realRead(n);
    if (sock.destroyed) return null;
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
