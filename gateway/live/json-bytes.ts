/**
 * A JSON text written straight into one reused byte buffer: what goes out often and big (the fleet
 * view's deltas) is written without building objects to stringify, and without the intermediate
 * strings JSON.stringify grows its result through. The bytes are valid only until the next begin().
 */
import { NumberText, writeInt } from '../number-text.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** What JSON must escape, and lone surrogates (JSON.stringify escapes them; UTF-8 cannot carry them). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export class JsonBytes {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private readonly numbers = new NumberText();
  private pos = 0;

  begin(): this {
    this.pos = 0;
    return this;
  }

  /** The text so far (a view of the buffer: copy it or send it before the next begin()). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** Text that needs no escaping (keys, punctuation, literals): ASCII only. A JS loop: short copies cost less than a call into Buffer.write. */
  raw(ascii: string): this {
    const n = ascii.length;
    this.room(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = ascii.charCodeAt(i);
    this.pos = p;
    return this;
  }

  string(s: string): this {
    const n = s.length;
    this.room(n + 2);
    const b = this.buf;
    let p = this.pos;
    b[p++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Anything to escape, or beyond ASCII: the careful path for the whole string.
      if (c < 0x20 || c === QUOTE || c === BACKSLASH || c > 0x7e) return this.escaped(s);
      b[p++] = c;
    }
    b[p++] = QUOTE;
    this.pos = p;
    return this;
  }

  private escaped(s: string): this {
    return NEEDS_ESCAPE.test(s) ? this.utf8(JSON.stringify(s)) : this.utf8(`"${s}"`);
  }

  stringOrNull(s: string | null | undefined): this {
    return s === null || s === undefined ? this.raw('null') : this.string(s);
  }

  /** A number as JSON.stringify writes it: integers digit by digit (no string made), NaN and ±Infinity as null. */
  number(n: number): this {
    if (Number.isSafeInteger(n)) {
      this.room(17);
      this.pos = writeInt(this.buf, this.pos, n);
      return this;
    }
    if (!Number.isFinite(n)) return this.raw('null');
    return this.raw(this.numbers.text(n));
  }

  numberOrNull(n: number | null | undefined): this {
    return n === null || n === undefined ? this.raw('null') : this.number(n);
  }

  bool(b: boolean): this {
    return this.raw(b ? 'true' : 'false');
  }

  /** Text already JSON (a cached fragment, or JSON.stringify's output). */
  utf8(json: string): this {
    this.room(json.length * 3);
    this.pos += this.buf.write(json, this.pos);
    return this;
  }

  /** Bytes already JSON. */
  copy(bytes: Uint8Array): this {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}
