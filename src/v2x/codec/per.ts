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
  if (e instanceof PerFail) e.path.unshift(seg);
  throw e;
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
    let p = this.pos;
    if (p + n > this.end) fail(`truncated: needs ${n} more bits at bit ${p}, ${this.end - p} left`);
    this.pos = p + n;
    const buf = this.buf;
    let v = 0;
    while (n > 0) {
      const off = p & 7;
      const avail = 8 - off;
      const take = Math.min(n, avail);
      const b = (buf[p >>> 3]! >>> (avail - take)) & ((1 << take) - 1);
      v = v * (1 << take) + b;
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

  /** Constrained whole number lb..ub in `nbits` bits (X.691 10.5.7.1); rejects values past ub. */
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
   * Unconstrained length determinant (X.691 10.9.3.6-8, unaligned). Returns the count, or -1..-4
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
    if (n <= 32) return n === 0 ? '' : this.bits(n).toString(2).padStart(n, '0');
    let s = '';
    while (n > 0) {
      const k = Math.min(n, 32);
      s += this.bits(k).toString(2).padStart(k, '0');
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

  /** `n` IA5 characters of 7 bits each (X.691 27.5: no PermittedAlphabet, so b = 7 in UPER). */
  ia5(n: number): string {
    if (this.pos + n * 7 > this.end) fail(`truncated: ${n} characters exceed the input`);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.bits(7));
    return s;
  }
}

export class Writer {
  buf = new Uint8Array(256);
  pos = 0;

  reset(): void {
    this.buf.fill(0, 0, (this.pos + 7) >>> 3);
    this.pos = 0;
  }

  private grow(bits: number): void {
    const need = (this.pos + bits + 7) >>> 3;
    if (need <= this.buf.length) return;
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
    this.grow(n);
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
    this.grow(1);
    if (b) this.buf[this.pos >>> 3]! |= 1 << (7 - (this.pos & 7));
    this.pos++;
  }

  /** Unconstrained length determinant for n < 16384 (longer values never occur in these modules). */
  length(n: number): void {
    if (n < 128) this.bits(n, 8);
    else if (n < 16384) this.bits(0x8000 | n, 16);
    else fail(`length ${n} needs fragmentation, which the encoder does not produce`);
  }

  bitString(s: string): void {
    for (let i = 0; i < s.length; i += 24) {
      const part = s.slice(i, i + 24);
      this.bits(Number.parseInt(part, 2), part.length);
    }
  }

  octets(hex: string): void {
    for (let i = 0; i < hex.length; i += 2) this.bits(Number.parseInt(hex.slice(i, i + 2), 16), 8);
  }

  ia5(s: string): void {
    for (let i = 0; i < s.length; i++) this.bits(s.charCodeAt(i), 7);
  }

  /** A copy of the bytes written so far (the last octet zero-padded). */
  result(): Uint8Array {
    return this.buf.slice(0, (this.pos + 7) >>> 3);
  }
}

/** Bits for a constrained whole number with range `r` (ub - lb + 1): ceil(log2(r)), 0 for r = 1. */
export function bitsFor(range: number): number {
  let n = 0;
  while (2 ** n < range) n++;
  return n;
}

export const BITS_RE = /^[01]*$/;
