/**
 * The X.691 unaligned PER core: a bit reader and a bit writer over Uint8Array. Values are read as
 * numbers (up to 32 bits at a time, combined with arithmetic rather than `<<`, which would overflow
 * past 31 bits: Longitude needs 32). Nothing is allocated per bit; a length is checked against the
 * bits left before anything of that length is allocated or skipped.
 */

/** A codec failure; composite codecs prepend the field path on the way up (only when failing). */
export class PerFail extends Error {
  readonly path: string[] = [];
}

export function fail(msg: string): never {
  throw new PerFail(msg);
}

/** Rethrows `e` with `seg` prepended to its path (a PerFail) or wraps a foreign error. */
export function at(e: unknown, seg: string): never {
  // Anything else is a bug in the codec: let it through unchanged so tests see it.
  if (e instanceof PerFail && seg !== '') e.path.unshift(seg);
  throw e;
}

/** Longest bit string accepted outside an extensible size root (far beyond any real message). */
export const MAX_EXT_BITS = 1 << 20;

/** '0'/'1' renderings of n-bit values (n <= 16), filled on first use: no allocation per message. */
const BIT_CHARS: (string | undefined)[][] = [];
function bitChars(v: number, n: number): string {
  let t = BIT_CHARS[n];
  if (t === undefined) {
    t = [];
    BIT_CHARS[n] = t;
  }
  let s = t[v];
  if (s === undefined) {
    s = n === 0 ? '' : v.toString(2).padStart(n, '0');
    t[v] = s;
  }
  return s;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

export class Reader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;

  reset(buf: Uint8Array): void {
    this.buf = buf;
    this.pos = 0;
    this.end = buf.length * 8;
  }

  /** `n` (0..32) bits as an unsigned number, first bit most significant. */
  bits(n: number): number {
    const p = this.pos;
    if (p + n > this.end) fail(`truncated: needs ${n} more bits at bit ${p}, ${this.end - p} left`);
    this.pos = p + n;
    if (n === 0) return 0;
    const buf = this.buf;
    const i = p >>> 3;
    if (n <= 24 && i + 3 < buf.length) {
      // A 32-bit window: offset (<= 7) + n (<= 24) stays within it, so int32 shifts are exact.
      const w = (buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!;
      return (w << (p & 7)) >>> (32 - n);
    }
    return this.slowBits(p, n);
  }

  /** Near the end of the buffer or past 24 bits: octet by octet, combined by arithmetic. */
  private slowBits(p: number, n: number): number {
    const buf = this.buf;
    let v = 0;
    while (n > 0) {
      const avail = 8 - (p & 7);
      const take = Math.min(n, avail);
      v = v * (1 << take) + ((buf[p >>> 3]! >>> (avail - take)) & ((1 << take) - 1));
      n -= take;
      p += take;
    }
    return v;
  }

  bit(): boolean {
    const p = this.pos;
    if (p >= this.end) fail(`truncated: needs 1 more bit at bit ${p}`);
    this.pos = p + 1;
    return ((this.buf[p >>> 3]! >>> (7 - (p & 7))) & 1) === 1;
  }

  /** Constrained whole number lb..ub in `nbits` bits (X.691 10.5); rejects values past ub. */
  int(lb: number, ub: number, nbits: number): number {
    const v = lb + this.bits(nbits);
    if (v > ub) fail(`value ${v} out of range ${lb}..${ub}`);
    return v;
  }

  /** Normally small non-negative whole number (X.691 10.6). */
  smallNumber(): number {
    if (!this.bit()) return this.bits(6);
    const len = this.length();
    if (len === 0 || len > 4) fail(`normally small number of ${len} octets is not supported`);
    return this.bits(len * 8);
  }

  /**
   * Unconstrained length determinant (X.691 10.9, unaligned). Returns the count, or -1..-4
   * (negated multiple of 16K) for a fragment, which the caller must follow with another length.
   */
  lengthOrFragment(): number {
    if (!this.bit()) return this.bits(7);
    if (!this.bit()) return this.bits(14);
    const m = this.bits(6);
    if (m < 1 || m > 4) fail(`bad length fragment multiplier ${m}`);
    return -m;
  }

  /** An unfragmented length determinant (a count below 16K). */
  length(): number {
    const l = this.lengthOrFragment();
    if (l < 0) fail('fragmented length where a short one is expected');
    return l;
  }

  /** Skips an open type (X.691 10.2): a length in octets, possibly fragmented, then the octets. */
  skipOpenType(): void {
    for (;;) {
      const l = this.lengthOrFragment();
      const octets = l >= 0 ? l : -l * 16384;
      if (this.pos + octets * 8 > this.end) fail(`open type of ${octets} octets exceeds the input`);
      this.pos += octets * 8;
      if (l >= 0) return;
    }
  }

  /** A bit string of `n` bits as '0'/'1' characters. */
  bitString(n: number): string {
    if (this.pos + n > this.end) fail(`truncated: bit string of ${n} bits exceeds the input`);
    if (n <= 16) return bitChars(this.bits(n), n);
    let s = '';
    while (n > 0) {
      const k = Math.min(n, 16);
      s += bitChars(this.bits(k), k);
      n -= k;
    }
    return s;
  }

  /** An extensible-size bit string's value outside the root: a fragmentable length in bits. */
  bitStringUnbounded(): string {
    let s = '';
    for (;;) {
      const l = this.lengthOrFragment();
      const n = l >= 0 ? l : -l * 16384;
      s += this.bitString(n);
      if (s.length > MAX_EXT_BITS) fail(`bit string longer than ${MAX_EXT_BITS} bits`);
      if (l >= 0) return s;
    }
  }

  /** `n` octets as lowercase hex. */
  octets(n: number): string {
    if (this.pos + n * 8 > this.end) fail(`truncated: ${n} octets exceed the input`);
    let s = '';
    for (let i = 0; i < n; i++) s += HEX[this.bits(8)];
    return s;
  }

  /** `n` IA5 characters of 7 bits each (known-multiplier character string: no PermittedAlphabet, so 7 bits in UPER). */
  ia5(n: number): string {
    if (this.pos + n * 7 > this.end) fail(`truncated: ${n} characters exceed the input`);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.bits(7));
    return s;
  }
}

/** Results are views into shared slabs (as Node's Buffer pool does): no ArrayBuffer per message. */
const SLAB = 64 * 1024;
let slab = new Uint8Array(SLAB);
let slabUsed = 0;

function hexNibble(c: number): number {
  return c <= 57 ? c - 48 : (c | 32) - 87;
}

export class Writer {
  buf = new Uint8Array(4096);
  pos = 0;

  reset(): void {
    this.buf.fill(0, 0, (this.pos + 7) >>> 3);
    this.pos = 0;
  }

  private grow(bits: number): void {
    const need = (this.pos + bits + 7) >>> 3;
    const b = new Uint8Array(Math.max(need, this.buf.length * 2));
    b.set(this.buf);
    this.buf = b;
  }

  /** Writes `v` (0 <= v < 2^n, n <= 32) in `n` bits, most significant first. */
  bits(v: number, n: number): void {
    if (n > 24) {
      this.bits(Math.floor(v / 16777216), n - 24);
      v = v % 16777216;
      n = 24;
    }
    if ((this.pos + n + 7) >>> 3 > this.buf.length) this.grow(n);
    const buf = this.buf;
    let p = this.pos;
    this.pos = p + n;
    while (n > 0) {
      const free = 8 - (p & 7);
      const take = Math.min(n, free);
      const chunk = (v >>> (n - take)) & ((1 << take) - 1);
      buf[p >>> 3]! |= chunk << (free - take);
      n -= take;
      p += take;
    }
  }

  bit(b: boolean): void {
    if (this.pos >>> 3 >= this.buf.length) this.grow(1);
    if (b) this.buf[this.pos >>> 3]! |= 1 << (7 - (this.pos & 7));
    this.pos++;
  }

  /** Unconstrained length determinant for n < 16384 (X.691 10.9, unaligned). */
  length(n: number): void {
    if (n < 128) this.bits(n, 8);
    else if (n < 16384) this.bits(0x8000 | n, 16);
    else fail(`length ${n} needs fragmentation`);
  }

  /**
   * A bit string outside its extensible size root: semi-constrained length in bits, fragmented in
   * chunks of 16K..64K bits past 16383 (X.691 10.9), ending with a short length (maybe 0).
   */
  bitStringUnbounded(s: string): void {
    let i = 0;
    while (s.length - i >= 16384) {
      const m = Math.min(4, Math.floor((s.length - i) / 16384));
      this.bits(0xc0 | m, 8);
      this.bitString(s.slice(i, i + m * 16384));
      i += m * 16384;
    }
    this.length(s.length - i);
    this.bitString(i === 0 ? s : s.slice(i));
  }

  /** '0'/'1' characters (validated by the caller), 24 at a time. */
  bitString(s: string): void {
    let v = 0;
    let k = 0;
    for (let i = 0; i < s.length; i++) {
      v = v * 2 + (s.charCodeAt(i) - 48);
      if (++k === 24) {
        this.bits(v, 24);
        v = 0;
        k = 0;
      }
    }
    if (k > 0) this.bits(v, k);
  }

  /** Hex digits (validated by the caller), one octet at a time. */
  octets(hex: string): void {
    for (let i = 0; i < hex.length; i += 2)
      this.bits((hexNibble(hex.charCodeAt(i)) << 4) | hexNibble(hex.charCodeAt(i + 1)), 8);
  }

  ia5(s: string): void {
    for (let i = 0; i < s.length; i++) this.bits(s.charCodeAt(i), 7);
  }

  /** The bytes written so far (the last octet zero-padded): a view of a shared slab (copy before transferring its buffer). */
  result(): Uint8Array {
    const n = (this.pos + 7) >>> 3;
    if (n > SLAB / 8) return this.buf.slice(0, n);
    if (slabUsed + n > SLAB) {
      slab = new Uint8Array(SLAB);
      slabUsed = 0;
    }
    const out = slab.subarray(slabUsed, slabUsed + n);
    out.set(this.buf.subarray(0, n));
    slabUsed += n;
    return out;
  }
}

/** Bits for a constrained whole number with range `r` (ub - lb + 1): ceil(log2(r)), 0 for r = 1. */
export function bitsFor(range: number): number {
  let n = 0;
  while (2 ** n < range) n++;
  return n;
}

export const BITS_RE = /^[01]*$/;
