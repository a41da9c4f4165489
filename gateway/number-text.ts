/**
 * Numbers as ASCII into byte buffers, for the writers that build text as bytes (InfluxDB line
 * protocol, the fleet view's JSON): integers digit by digit with no string made, fractional values
 * through a small cache of their shortest round-trip text, since sensors repeat values.
 */
const MINUS = 45;
const ZERO = 48;
const CACHE_BITS = 12;

/** Writes an integer (|v| < 1e16) in decimal at pos; returns the position after it. */
export function writeInt(buf: Uint8Array, pos: number, v: number): number {
  if (v < 0) {
    buf[pos++] = MINUS;
    v = -v;
  }
  if (v < 10) {
    buf[pos] = ZERO + v;
    return pos + 1;
  }
  // Two int32 halves, so the digit loop stays in small-integer arithmetic.
  let hi = Math.floor(v / 1e8) | 0;
  let lo = (v - hi * 1e8) | 0;
  const digits = hi > 0 ? (hi >= 1e6 ? (hi >= 1e7 ? 16 : 15) : hi >= 1e5 ? 14 : hi >= 1e4 ? 13 : hi >= 1e3 ? 12 : hi >= 100 ? 11 : hi >= 10 ? 10 : 9) : lo >= 1e7 ? 8 : lo >= 1e6 ? 7 : lo >= 1e5 ? 6 : lo >= 1e4 ? 5 : lo >= 1e3 ? 4 : lo >= 100 ? 3 : lo >= 10 ? 2 : 1;
  let p = pos + digits - 1;
  const end = pos + digits;
  if (hi > 0) {
    for (let k = 0; k < 8; k++) {
      buf[p--] = ZERO + (lo % 10);
      lo = (lo / 10) | 0;
    }
    while (hi > 0) {
      buf[p--] = ZERO + (hi % 10);
      hi = (hi / 10) | 0;
    }
  } else {
    while (p >= pos) {
      buf[p--] = ZERO + (lo % 10);
      lo = (lo / 10) | 0;
    }
  }
  return end;
}

/** The shortest round-trip text of finite values (`'' + v`, what JSON.stringify writes too), through a direct-mapped cache. One per writer. */
export class NumberText {
  private readonly bits = new Float64Array(1);
  private readonly words = new Uint32Array(this.bits.buffer);
  private readonly cacheValues = new Float64Array(1 << CACHE_BITS);
  private readonly cacheText: string[] = new Array<string>(1 << CACHE_BITS).fill('0');

  text(v: number): string {
    this.bits[0] = v;
    const h = Math.imul(this.words[0]! ^ this.words[1]!, 0x9e3779b1) >>> (32 - CACHE_BITS);
    if (this.cacheValues[h] === v) return this.cacheText[h]!;
    const s = '' + v;
    this.cacheValues[h] = v;
    this.cacheText[h] = s;
    return s;
  }
}
