import {
  checkName,
  DecodeError,
  dict,
  type FieldValue,
  MAX_KEYS,
  MAX_POINTS,
  type Point,
  put,
} from './point.js';

/**
 * InfluxDB line protocol, the whole syntax:
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 * Escapes: `\,` and `\ ` in measurements; `\,` `\=` `\ ` in tag keys, tag values and field keys;
 * `\"` and `\\` in string field values (which may hold spaces, commas and newlines). Field values:
 * float (`1`, `-1.5e3`), integer `12i` (int64), unsigned `12u` (uint64), boolean (t, T, true, True,
 * TRUE, f, F, false, False, FALSE), string `"..."`. Lines starting with `#` are comments. A `device`
 * tag names the device (else the topic does). Timestamps are integers in `precision`, default ns.
 */
export type Precision = 'ns' | 'us' | 'ms' | 's';

const DIVISOR: Record<Precision, bigint> = { ns: 1_000_000n, us: 1000n, ms: 1n, s: 1n };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INT = /^[+-]?\d+$/;
const UINT = /^\d+$/;
const TRUE = new Set(['t', 'T', 'true', 'True', 'TRUE']);
const FALSE = new Set(['f', 'F', 'false', 'False', 'FALSE']);

const BS = 92; // \
const COMMA = 44;
const SPACE = 32;
const EQ = 61;
const QUOTE = 34;
const NL = 10;
const CR = 13;
const HASH = 35;
const TAB = 9;

/**
 * `ends`, when given, receives after each point the offset in `text` where its line ended (the
 * start of the next line): the HTTP write API cuts a body into spool chunks on those boundaries.
 * A failure is a DecodeError whose `line` is the 1-based line number.
 */
export function decodeLineProtocol(
  text: string,
  device: string,
  receivedAt: number,
  precision: Precision = 'ns',
  ends?: number[],
): Point[] {
  const p = new Parser(text, device, receivedAt, precision);
  const out: Point[] = [];
  try {
    while (p.i < text.length) {
      const pt = p.line();
      if (pt) {
        if (out.length >= MAX_POINTS)
          throw new DecodeError(`more than ${MAX_POINTS} points in one payload`, p.lineNo);
        out.push(pt);
        ends?.push(p.i);
      }
    }
  } catch (err) {
    // Name checks (checkName) know no line: give them this one.
    if (err instanceof DecodeError && err.line === undefined)
      throw new DecodeError(`line ${p.lineNo}: ${err.message}`, p.lineNo);
    throw err;
  }
  if (out.length === 0) throw new DecodeError('no line-protocol points in the payload');
  return out;
}

/** 10^k for the in-place decimals (exact doubles up to 10^22). */
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);
/** Token positions in a line whose recent spellings are remembered, and spellings per position. */
const RECALL_POSITIONS = 16;
const RECALL_SPELLINGS = 8;
/** A position that missed this many times in a row stops being checked (high-cardinality values). */
const RECALL_GIVE_UP = 32;

class Parser {
  i = 0;
  lineNo = 0;
  /** The token's ordinal in its line: measurement 0, then tag keys and values, then field keys. */
  #ord = 0;
  /**
   * Names repeat from line to line (measurement, tag keys, most tag values, field keys): a token
   * spelled as one already read at the same position is returned as that string, without a slice.
   * Fewer young strings for the GC, and the sink's maps hash a string once, not once per point.
   */
  readonly #recall: (string[] | null)[] = [];
  readonly #misses: number[] = [];
  constructor(
    readonly s: string,
    readonly device: string,
    readonly receivedAt: number,
    readonly precision: Precision,
  ) {}

  fail(what: string): never {
    throw new DecodeError(`line ${this.lineNo}: ${what}`, this.lineNo);
  }

  /** One line; null for blank lines and comments. */
  line(): Point | null {
    const s = this.s;
    this.lineNo++;
    while (this.i < s.length && (s.charCodeAt(this.i) === SPACE || s.charCodeAt(this.i) === TAB)) this.i++;
    const c = s.charCodeAt(this.i);
    if (this.i >= s.length || c === NL || c === CR || c === HASH) {
      this.skipLine();
      return null;
    }
    this.#ord = 0;
    const measurement = checkName('measurement', this.token(false));
    const tags = dict<string>();
    let device = this.device;
    let nTags = 0;
    while (s.charCodeAt(this.i) === COMMA) {
      this.i++;
      const k = this.token(true);
      if (s.charCodeAt(this.i) !== EQ) this.fail(`tag ${clip(k)} has no =value`);
      this.i++;
      const v = this.token(false);
      if (k.length === 0 || v.length === 0) this.fail('empty tag key or value');
      if (++nTags > MAX_KEYS) this.fail(`more than ${MAX_KEYS} tags`);
      if (k === 'device') device = checkName('device', v);
      else put(tags, checkName('tag key', k), v);
    }
    if (s.charCodeAt(this.i) !== SPACE) this.fail('expected a space before the fields');
    while (s.charCodeAt(this.i) === SPACE) this.i++;
    const fields = dict<FieldValue>();
    let nFields = 0;
    for (;;) {
      const k = this.token(true);
      if (k.length === 0) this.fail('empty field key');
      if (s.charCodeAt(this.i) !== EQ) this.fail(`field ${clip(k)} has no =value`);
      this.i++;
      if (++nFields > MAX_KEYS) this.fail(`more than ${MAX_KEYS} fields`);
      put(fields, checkName('field key', k), this.value(k));
      if (s.charCodeAt(this.i) !== COMMA) break;
      this.i++;
    }
    let ts = this.receivedAt;
    const c2 = s.charCodeAt(this.i);
    if (c2 === SPACE || c2 === TAB) {
      while (s.charCodeAt(this.i) === SPACE || s.charCodeAt(this.i) === TAB) this.i++;
      const start = this.i;
      const fast = this.fastTimestamp();
      if (fast >= 0) ts = fast;
      else {
        this.i = start;
        while (this.i < s.length && s.charCodeAt(this.i) !== NL && s.charCodeAt(this.i) !== CR) this.i++;
        const t = s.slice(start, this.i).trimEnd();
        if (t.length > 0) ts = this.timestamp(t);
      }
    }
    const end = s.charCodeAt(this.i);
    if (this.i < s.length && end !== NL && end !== CR) this.fail(`unexpected ${JSON.stringify(s[this.i])}`);
    this.skipLine();
    return { measurement, device, tags, fields, ts };
  }

  skipLine(): void {
    const nl = this.s.indexOf('\n', this.i);
    this.i = nl < 0 ? this.s.length : nl + 1;
  }

  /** Reads up to an unescaped space or comma (and `=` when `key`); unescapes as it goes. */
  token(key: boolean): string {
    const s = this.s;
    const ord = this.#ord++;
    const known = ord < RECALL_POSITIONS ? this.#recall[ord] : null;
    if (known) {
      for (const t of known) {
        if (!s.startsWith(t, this.i)) continue;
        const e = this.i + t.length;
        const c = s.charCodeAt(e);
        // The spelling must end where a token ends (`c1` is not `c10`); t holds no backslash, so
        // the text matched holds no escape.
        if (
          e >= s.length ||
          c === COMMA ||
          c === SPACE ||
          (key && c === EQ) ||
          c === NL ||
          c === CR ||
          c === TAB
        ) {
          this.i = e;
          this.#misses[ord] = 0;
          return t;
        }
      }
    }
    const start = this.i;
    let out: string | null = null;
    let from = start;
    let backslash = false;
    for (; this.i < s.length; this.i++) {
      const c = s.charCodeAt(this.i);
      if (c === BS) {
        backslash = true;
        const n = s.charCodeAt(this.i + 1);
        if (n === COMMA || n === SPACE || n === EQ || (n === BS && key)) {
          out = (out ?? '') + s.slice(from, this.i);
          from = this.i + 1;
          this.i++;
        }
        continue;
      }
      if (c === COMMA || c === SPACE || (key && c === EQ) || c === NL || c === CR || c === TAB) break;
    }
    if (out !== null) return out + s.slice(from, this.i);
    const t = s.slice(start, this.i);
    if (ord < RECALL_POSITIONS && !backslash && t.length > 0) this.#remember(ord, known, t);
    return t;
  }

  #remember(ord: number, known: string[] | null | undefined, t: string): void {
    if (known === null) return; // given up on this position
    if (known === undefined) {
      this.#recall[ord] = [t];
      this.#misses[ord] = 0;
      return;
    }
    const misses = (this.#misses[ord] ?? 0) + 1;
    this.#misses[ord] = misses;
    if (misses >= RECALL_GIVE_UP) this.#recall[ord] = null;
    else if (known.length < RECALL_SPELLINGS) known.push(t);
  }

  value(key: string): FieldValue {
    const s = this.s;
    if (s.charCodeAt(this.i) === QUOTE) {
      this.i++;
      let out = '';
      let from = this.i;
      for (;;) {
        if (this.i >= s.length) this.fail(`string field ${clip(key)} has no closing quote`);
        const c = s.charCodeAt(this.i);
        if (c === BS) {
          const n = s.charCodeAt(this.i + 1);
          if (n === QUOTE || n === BS) {
            out += s.slice(from, this.i);
            from = this.i + 1;
            this.i += 2;
            continue;
          }
        } else if (c === QUOTE) break;
        this.i++;
      }
      out += s.slice(from, this.i);
      this.i++;
      if (out.length > 65_536) this.fail(`string field ${clip(key)} longer than 64 KiB`);
      return out;
    }
    const start = this.i;
    // Counted on the way for the fast paths below: digits, dots and anything else after a sign.
    const c0 = s.charCodeAt(start);
    const signed = c0 === 45 /* - */ || c0 === 43; /* + */
    let digits = 0;
    let dots = 0;
    let other = 0;
    if (signed) this.i++;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === COMMA || c === SPACE || c === NL || c === CR || c === TAB) break;
      if (c >= 48 && c <= 57) digits++;
      else if (c === 46) dots++;
      else other++;
      this.i++;
    }
    const end = this.i;
    // [+-]digits[.digits]: always a valid float (FLOAT matches it).
    if (other === 0 && dots <= 1 && digits > 0) {
      // Up to 15 digits, read in place: the digits as an integer n (exact) over 10^k (exact), one
      // correctly rounded division, so the same double as Number() of the text (-0 included).
      if (digits <= 15) {
        let n = 0;
        let k = 0;
        let dot = false;
        for (let j = signed ? start + 1 : start; j < end; j++) {
          const c = s.charCodeAt(j);
          if (c === 46) dot = true;
          else {
            n = n * 10 + (c - 48);
            if (dot) k++;
          }
        }
        const f = k === 0 ? n : n / (POW10[k] as number);
        return c0 === 45 ? -f : f;
      }
      const f = Number(s.slice(start, end));
      if (Number.isFinite(f)) return f;
    }
    // [+-]digits `i`, up to 15 digits: exact as a double, summed in place.
    if (other === 1 && dots === 0 && digits > 0 && digits <= 15 && s.charCodeAt(end - 1) === 105) {
      let n = 0;
      for (let j = signed ? start + 1 : start; j < end - 1; j++) n = n * 10 + (s.charCodeAt(j) - 48);
      return c0 === 45 ? 0 - n + 0 : n; // + 0: "-0i" is 0, as through BigInt
    }
    const v = s.slice(start, end);
    if (v.length === 0) this.fail(`field ${clip(key)} has no value`);
    const last = v.charCodeAt(v.length - 1);
    if (last === 105 /* i */) {
      const d = v.slice(0, -1);
      if (!INT.test(d)) this.fail(`field ${clip(key)}: ${clip(v)} is not an integer`);
      // Up to 15 digits is inside int64 and exact as a double: no BigInt per field.
      if (d.length <= 15) return Number(d) + 0; // + 0: "-0i" is 0, as through BigInt
      const b = BigInt(d);
      if (b < INT64_MIN || b > INT64_MAX) this.fail(`field ${clip(key)}: ${clip(v)} overflows int64`);
      return Number(b);
    }
    if (last === 117 /* u */) {
      const d = v.slice(0, -1);
      if (!UINT.test(d)) this.fail(`field ${clip(key)}: ${clip(v)} is not an unsigned integer`);
      if (d.length <= 15) return Number(d) + 0; // + 0: "-0i" is 0, as through BigInt
      const b = BigInt(d);
      if (b > UINT64_MAX) this.fail(`field ${clip(key)}: ${clip(v)} overflows uint64`);
      return Number(b);
    }
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    if (!FLOAT.test(v)) this.fail(`field ${clip(key)}: ${clip(v)} is not a number, boolean or "string"`);
    const f = Number(v);
    if (!Number.isFinite(f)) this.fail(`field ${clip(key)}: ${clip(v)} is out of float range`);
    return f;
  }

  /**
   * The usual timestamp (1 to 19 unsigned digits, then the line's end) read in place, without the
   * slices and the regex of timestamp(): ms, or -1 to take the general path (which gives the errors).
   * At most 15 digits are summed, so the result is exact and equals Number() of the same digits.
   */
  fastTimestamp(): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
    }
    const n = i - start;
    // 19 digits below 9e18 are inside int64 too (nanoseconds since 1970 have 19 digits).
    if (n === 0 || n > 19 || (n === 19 && s.charCodeAt(start) >= 57)) return -1;
    const c = s.charCodeAt(i);
    if (i < s.length && c !== NL && c !== CR) return -1;
    const p = this.precision;
    const keep = p === 'ns' ? n - 6 : p === 'us' ? n - 3 : n;
    if (keep > 15) return -1;
    let v = 0;
    for (let j = start; j < start + keep; j++) v = v * 10 + (s.charCodeAt(j) - 48);
    this.i = i;
    return p === 's' ? v * 1000 : v;
  }

  timestamp(t: string): number {
    if (!INT.test(t) || t.length > 20) this.fail(`timestamp ${clip(t)} is not an integer`);
    const p = this.precision;
    // Fast path without BigInt: up to 18 digits fits int64; slicing ns/us truncates like division.
    if (t.length <= 18) {
      if (p === 'ms') return Number(t);
      if (p === 's') return Number(t) * 1000;
      const cut = p === 'ns' ? 6 : 3;
      const d = t.length - cut;
      return d <= 0 || (d === 1 && (t[0] === '-' || t[0] === '+')) ? 0 : Number(t.slice(0, d));
    }
    const b = BigInt(t);
    if (b < INT64_MIN || b > INT64_MAX) this.fail(`timestamp ${clip(t)} overflows int64`);
    const ms = p === 's' ? b * 1000n : b / DIVISOR[p];
    if (ms < -9_223_372_036_854n || ms > 9_223_372_036_854n)
      this.fail(`timestamp ${clip(t)} is out of range`);
    return Number(ms);
  }
}

function clip(s: string): string {
  return s.length > 40 ? `${JSON.stringify(s.slice(0, 40))}…` : JSON.stringify(s);
}
