/**
 * A JSON reader for OIP REST infer bodies that puts `inputs[].data` number arrays straight into a
 * Float64Array instead of JS arrays (JSON.parse builds an array per row, then fromJsonData copies
 * it into the typed array). Our own code, not a streaming JSON library: the libraries we tried
 * allocate a JS value per number, which is the cost this avoids.
 *
 * It is a fast path only: it accepts a body only when it is certain to read it exactly as
 * JSON.parse would (same numbers, same strings, same keys), and returns `undefined` otherwise —
 * malformed or truncated JSON, nesting past MAX_JSON_DEPTH, a `__proto__` key, data that is
 * ragged, empty, holds anything but numbers. The caller then parses with JSON.parse and the
 * checks of rest-body.ts, so every refusal keeps its one stable code and message.
 */

import { MAX_JSON_DEPTH } from '../../core/http/json-depth.js';

/** `data` of numbers read into doubles (exactly JSON.parse's values) with its regular nesting. */
export class DenseData {
  constructor(
    readonly values: Float64Array,
    /** Length of the arrays at each nesting level; the last holds numbers. */
    readonly dims: number[],
    /**
     * Some values are only certain to round to the same float32 as JSON.parse's double would
     * (long mantissas, read in f32 mode): fit for FP32 data only.
     */
    readonly f32Only: boolean,
  ) {}
}

// Exact powers of ten: a mantissa below 2^53 times or divided by one of these is one correctly
// rounded operation, so it equals JSON.parse's value (Clinger's fast path).
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

enum C {
  Tab = 9,
  Lf = 10,
  Cr = 13,
  Space = 32,
  Quote = 34,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Zero = 48,
  Nine = 57,
  Colon = 58,
  E = 69,
  LBracket = 91,
  Backslash = 92,
  RBracket = 93,
  LowerE = 101,
  LBrace = 123,
  RBrace = 125,
}

/** Node's Buffer slicers without toString's argument handling (they exist on every Buffer). */
type Latin1Buffer = Buffer & {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
};

/**
 * Where dense values are read: one buffer reused body after body (a typed array of this size has
 * its memory outside the JS heap, and allocating one per body cost more than the numbers). Safe
 * because a body's DenseData views are turned into tensors (copied) before the next body is read:
 * parseBodyBytes does both synchronously. A buffer grown past KEEP is dropped after its body.
 */
let scratch = new Float64Array(1024);
const KEEP = 1 << 17;

/** Thrown inside the scanner to give up; never leaves this module. */
const DECLINE = new Error('decline');

class Scanner {
  pos = 0;
  /** Number of the last scanNumber. */
  num = 0;
  /** A dense value was read in f32 mode (see DenseData.f32Only). */
  approx = false;
  /** Elements of `scratch` taken by this body's earlier dense inputs. */
  used = 0;
  constructor(
    private readonly b: Latin1Buffer,
    private readonly end: number,
    /** Every input of the model is FP32: long mantissas in `data` may be read in f32 mode. */
    private readonly f32: boolean,
  ) {}

  ws(): number {
    const b = this.b;
    let p = this.pos;
    while (p < this.end) {
      const c = b[p] as number;
      if (c !== C.Space && c !== C.Lf && c !== C.Cr && c !== C.Tab) break;
      p++;
    }
    this.pos = p;
    return p < this.end ? (b[p] as number) : -1;
  }

  value(depth: number, role: number): unknown {
    const c = this.ws();
    if (c === C.LBrace) return this.object(depth + 1, role);
    if (c === C.LBracket) return this.array(depth + 1, role);
    if (c === C.Quote) return this.string();
    if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) {
      this.number();
      return this.num;
    }
    return this.literal();
  }

  literal(): boolean | null {
    const b = this.b;
    const p = this.pos;
    const is = (word: string) => {
      if (p + word.length > this.end) return false;
      for (let i = 0; i < word.length; i++) if (b[p + i] !== word.charCodeAt(i)) return false;
      return true;
    };
    if (is('true')) {
      this.pos += 4;
      return true;
    }
    if (is('false')) {
      this.pos += 5;
      return false;
    }
    if (is('null')) {
      this.pos += 4;
      return null;
    }
    throw DECLINE;
  }

  /** role 1: the body; 3: an element of "inputs" (its "data" may be dense). */
  object(depth: number, role: number): Record<string, unknown> {
    if (depth > MAX_JSON_DEPTH) throw DECLINE;
    this.pos++; // {
    const out: Record<string, unknown> = {};
    if (this.ws() === C.RBrace) {
      this.pos++;
      return out;
    }
    for (;;) {
      if (this.ws() !== C.Quote) throw DECLINE;
      const key = this.string();
      // A plain assignment would set the prototype, where JSON.parse makes an own property.
      if (key === '__proto__') throw DECLINE;
      if (this.ws() !== C.Colon) throw DECLINE;
      this.pos++;
      if (role === 3 && key === 'data' && this.ws() === C.LBracket) out[key] = this.dense(depth);
      else out[key] = this.value(depth, role === 1 && key === 'inputs' ? 2 : 0);
      const c = this.ws();
      this.pos++;
      if (c === C.Comma) continue;
      if (c === C.RBrace) return out;
      throw DECLINE;
    }
  }

  /** role 2: the "inputs" array, whose objects are tensors. */
  array(depth: number, role: number): unknown[] {
    if (depth > MAX_JSON_DEPTH) throw DECLINE;
    this.pos++; // [
    const out: unknown[] = [];
    if (this.ws() === C.RBracket) {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth, role === 2 ? 3 : 0));
      const c = this.ws();
      this.pos++;
      if (c === C.Comma) continue;
      if (c === C.RBracket) return out;
      throw DECLINE;
    }
  }

  string(): string {
    const b = this.b;
    const start = ++this.pos;
    let p = start;
    let plain = true;
    for (;;) {
      if (p >= this.end) throw DECLINE;
      const c = b[p] as number;
      if (c === C.Quote) break;
      if (c < 0x20) throw DECLINE;
      if (c === C.Backslash) {
        plain = false;
        p += 2;
        continue;
      }
      if (c >= 0x80) plain = false;
      p++;
    }
    this.pos = p + 1;
    if (plain) return b.latin1Slice(start, p);
    // Escapes or UTF-8: JSON.parse of just this token reads it as the whole body's parse would.
    try {
      return JSON.parse(b.utf8Slice(start - 1, p + 1)) as string;
    } catch {
      throw DECLINE;
    }
  }

  /**
   * A JSON number into this.num, exactly as JSON.parse reads it; with `f32` (a dense FP32 value),
   * possibly a double a few ulps off it that certainly rounds to the same float32.
   */
  number(f32 = false): void {
    const b = this.b;
    const start = this.pos;
    let p = start;
    const neg = b[p] === C.Minus;
    if (neg) p++;
    let m = 0;
    let digits = 0;
    let c = b[p] as number;
    if (c === C.Zero) {
      p++;
      c = b[p] as number;
      // A leading zero is the whole integer part in JSON.
      if (c >= C.Zero && c <= C.Nine) throw DECLINE;
    } else if (c > C.Zero && c <= C.Nine) {
      do {
        m = m * 10 + (c - C.Zero);
        digits++;
        c = b[++p] as number;
      } while (c >= C.Zero && c <= C.Nine);
    } else throw DECLINE;
    let scale = 0;
    if (c === C.Dot) {
      c = b[++p] as number;
      if (!(c >= C.Zero && c <= C.Nine)) throw DECLINE;
      do {
        m = m * 10 + (c - C.Zero);
        // Leading zeros of a fraction (0.0001) add no significant digits.
        if (m !== 0) digits++;
        scale--;
        c = b[++p] as number;
      } while (c >= C.Zero && c <= C.Nine);
    }
    if (c === C.E || c === C.LowerE) {
      c = b[++p] as number;
      let eneg = false;
      if (c === C.Plus || c === C.Minus) {
        eneg = c === C.Minus;
        c = b[++p] as number;
      }
      if (!(c >= C.Zero && c <= C.Nine)) throw DECLINE;
      let e = 0;
      do {
        if (e < 100_000) e = e * 10 + (c - C.Zero);
        c = b[++p] as number;
      } while (c >= C.Zero && c <= C.Nine);
      scale += eneg ? -e : e;
    }
    this.pos = p;
    let v: number;
    if (scale >= -22 && scale <= 22 && (digits <= 15 || (f32 && digits <= 19))) {
      v = scale >= 0 ? m * (POW10[scale] as number) : m / (POW10[-scale] as number);
      // 16–19 digits (what JS prints for most doubles): m carries up to ~8 roundings of 2^-53
      // each, v one more. The double JSON.parse gives lies within 2e-15 of v, so when both ends
      // of that band round to one float32, that float32 is the one the plain path stores.
      // V8's string-to-double on each of these cost more than JSON.parse itself.
      if (digits > 15) {
        if (Math.fround(v * (1 - 2e-15)) !== Math.fround(v * (1 + 2e-15)))
          v = Number(b.latin1Slice(neg ? start + 1 : start, p));
        else this.approx = true;
      }
    }
    // More digits, or a far exponent: V8's own string-to-double, as JSON.parse uses.
    else v = Number(b.latin1Slice(neg ? start + 1 : start, p));
    this.num = neg ? -v : v;
  }

  /**
   * `data` as numbers in regularly nested arrays: every array at one level has the same length and
   * holds the same kind (arrays or numbers). Anything else declines (the checks then name it).
   */
  dense(depth: number): DenseData {
    let values = scratch;
    let start = this.used;
    let n = start;
    const dims: number[] = [];
    /** Elements seen so far in the open array at each level. */
    const count: number[] = [];
    let level = -1;
    let leaf = -1;
    // Iterative: the depth is bounded by MAX_JSON_DEPTH, but a loop needs no stack at all.
    for (;;) {
      let c = this.ws();
      if (c === C.LBracket) {
        if (level >= 0 && leaf !== -1 && level >= leaf) throw DECLINE; // an array among numbers
        level++;
        if (depth + level + 1 > MAX_JSON_DEPTH) throw DECLINE;
        count[level] = 0;
        this.pos++;
        continue;
      }
      if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) {
        if (leaf === -1) leaf = level;
        else if (leaf !== level) throw DECLINE;
        this.number(this.f32);
        if (n === values.length) {
          // Earlier inputs' views keep the old buffer; this input's values move to the new one.
          const grown = new Float64Array(Math.max(1024, (n - start) * 2));
          grown.set(values.subarray(start, n));
          n -= start;
          start = 0;
          values = grown;
          scratch = grown;
        }
        values[n++] = this.num;
      } else throw DECLINE; // ], a string, a literal, an object, the end: the checks say which
      // After an element: commas and closing brackets.
      for (;;) {
        count[level] = (count[level] as number) + 1;
        c = this.ws();
        this.pos++;
        if (c === C.Comma) break;
        if (c !== C.RBracket) throw DECLINE;
        const len = count[level] as number;
        if (dims[level] === undefined) dims[level] = len;
        else if (dims[level] !== len) throw DECLINE;
        if (level === 0) {
          if (leaf === -1) throw DECLINE;
          const d = new DenseData(values.subarray(start, n), dims, this.approx);
          this.approx = false;
          this.used = n;
          return d;
        }
        level--;
      }
    }
  }
}

/**
 * Reads an infer body; `undefined` when the fast path declines (parse it with JSON.parse instead).
 * Each `inputs[i].data` of numbers comes back as DenseData, everything else as JSON.parse gives it.
 * `f32`: every input of the model is FP32, so dense values need only round to the right float32.
 */
export function scanInferBody(body: Buffer, f32 = false): unknown {
  if (body.length === 0) return undefined;
  if (scratch.length > KEEP) scratch = new Float64Array(1024);
  const s = new Scanner(body as Latin1Buffer, body.length, f32);
  try {
    const c = s.ws();
    if (c !== C.LBrace) return undefined;
    const v = s.value(0, 1);
    if (s.ws() !== -1) return undefined;
    return v;
  } catch (err) {
    if (err === DECLINE) return undefined;
    throw err;
  }
}
