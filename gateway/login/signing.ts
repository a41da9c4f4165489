/**
 * Signed, self-describing values (login codes, session cookies): dot-separated fields and an
 * HMAC-SHA256 over them. The key is derived from the operator token, so every process that holds
 * the token (the workers of one `--workers` gateway, the instances of a cluster) accepts what any
 * of them issued, and changing the token ends every login at once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Bytes of the MAC kept: 128 bits, as for session ids. */
const MAC_BYTES = 16;

export class Signer {
  private readonly key: Buffer;

  constructor(operatorToken: string) {
    this.key = createHmac('sha256', Buffer.from(operatorToken, 'utf8')).update('telemetry-gateway operator login v1').digest();
  }

  /** `kind` keeps a code from passing for a session and the other way round. */
  sign(kind: string, fields: string[]): string {
    return `${fields.join('.')}.${this.mac(kind, fields).toString('base64url')}`;
  }

  /** The fields of a value this key signed for `kind`, or undefined for anything else. */
  verify(kind: string, value: string, fieldCount: number): string[] | undefined {
    const parts = value.split('.');
    if (parts.length !== fieldCount + 1) return undefined;
    const given = Buffer.from(parts.pop()!, 'base64url');
    const want = this.mac(kind, parts);
    return given.length === want.length && timingSafeEqual(given, want) ? parts : undefined;
  }

  private mac(kind: string, fields: string[]): Buffer {
    return createHmac('sha256', this.key).update(`${kind}\n${fields.join('.')}`).digest().subarray(0, MAC_BYTES);
  }
}
