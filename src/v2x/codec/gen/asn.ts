/**
 * A parser for the subset of ASN.1 the CSAE 53 modules use: type assignments of INTEGER (with a
 * range), ENUMERATED, BIT STRING (named bits, SIZE, extensible SIZE), OCTET STRING, IA5String,
 * SEQUENCE, SEQUENCE OF and CHOICE (with extension markers and OPTIONAL), plus references. Value
 * assignments (named BasicVehicleClass values) are skipped. Anything else is an error, so a module
 * change the codec does not cover fails the generator instead of producing a wrong codec.
 */

export type AsnType =
  | { kind: 'int'; lb: number; ub: number }
  | { kind: 'enum'; items: string[]; ext: boolean }
  | { kind: 'bits'; names: string[]; min: number; max: number; ext: boolean }
  | { kind: 'octets'; min: number; max: number }
  | { kind: 'ia5'; min: number; max: number }
  | { kind: 'seq'; fields: AsnField[]; ext: boolean }
  | { kind: 'seqof'; min: number; max: number; of: AsnType }
  | { kind: 'choice'; alts: AsnField[]; ext: boolean }
  | { kind: 'ref'; name: string };

export interface AsnField {
  name: string;
  type: AsnType;
  optional: boolean;
}

/** Built-in types and reserved words the generator does not cover (so they are not taken as references). */
const RESERVED = new Set(
  'BOOLEAN NULL REAL OBJECT EXTERNAL EMBEDDED ANY SET INSTANCE CLASS TYPE-IDENTIFIER ABSTRACT-SYNTAX DATE TIME DURATION OID-IRI RELATIVE-OID'.split(
    ' ',
  ),
);

export type AsnModule = { name: string; types: Map<string, AsnType> };

function tokenize(src: string): string[] {
  const noBlock = src.replace(/\/\*[\s\S]*?\*\//g, ' ');
  const noLine = noBlock
    .split('\n')
    .map((l) => {
      const i = l.indexOf('--');
      return i < 0 ? l : l.slice(0, i);
    })
    .join('\n');
  const re = /\s*(::=|\.\.\.|\.\.|[{}(),;]|-?\d+|[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)/y;
  const out: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < noLine.length && /\s/.test(noLine[pos] ?? '')) pos++;
    if (pos >= noLine.length) break;
    re.lastIndex = pos;
    const m = re.exec(noLine);
    if (!m?.[1]) throw new Error(`asn: cannot tokenize near ${JSON.stringify(noLine.slice(pos, pos + 30))}`);
    out.push(m[1]);
    pos = re.lastIndex;
  }
  return out;
}

class Parser {
  i = 0;
  constructor(private readonly t: string[]) {}
  peek(k = 0): string | undefined {
    return this.t[this.i + k];
  }
  next(): string {
    const v = this.t[this.i++];
    if (v === undefined) throw new Error('asn: unexpected end of module');
    return v;
  }
  expect(s: string): void {
    const v = this.next();
    if (v !== s) throw new Error(`asn: expected ${s}, got ${v} (token ${this.i})`);
  }
  num(): number {
    const v = this.next();
    if (!/^-?\d+$/.test(v)) throw new Error(`asn: expected a number, got ${v}`);
    return Number(v);
  }

  /** `(SIZE (a..b))`, `(SIZE(n))` or `(SIZE (n, ...))`; the opening `(` is the next token. */
  size(): { min: number; max: number; ext: boolean } {
    this.expect('(');
    this.expect('SIZE');
    this.expect('(');
    const min = this.num();
    let max = min;
    let ext = false;
    if (this.peek() === '..') {
      this.next();
      max = this.num();
    }
    if (this.peek() === ',') {
      this.next();
      this.expect('...');
      ext = true;
    }
    this.expect(')');
    this.expect(')');
    return { min, max, ext };
  }

  type(): AsnType {
    const w = this.next();
    switch (w) {
      case 'INTEGER': {
        this.expect('(');
        const lb = this.num();
        this.expect('..');
        const ub = this.num();
        this.expect(')');
        return { kind: 'int', lb, ub };
      }
      case 'ENUMERATED': {
        this.expect('{');
        const items: { name: string; value: number }[] = [];
        let ext = false;
        for (;;) {
          const n = this.next();
          if (n === '...') ext = true;
          else {
            let value = items.length;
            if (this.peek() === '(') {
              this.next();
              value = this.num();
              this.expect(')');
            }
            if (ext) throw new Error('asn: ENUMERATED extension additions are not supported');
            items.push({ name: n, value });
          }
          const sep = this.next();
          if (sep === '}') break;
          if (sep !== ',') throw new Error(`asn: expected , or } in ENUMERATED, got ${sep}`);
        }
        items.sort((a, b) => a.value - b.value);
        return { kind: 'enum', items: items.map((x) => x.name), ext };
      }
      case 'BIT': {
        this.expect('STRING');
        const names: string[] = [];
        if (this.peek() === '{') {
          this.next();
          for (;;) {
            const n = this.next();
            this.expect('(');
            names[this.num()] = n;
            this.expect(')');
            const sep = this.next();
            if (sep === '}') break;
            if (sep !== ',') throw new Error(`asn: expected , or } in BIT STRING, got ${sep}`);
          }
        }
        const s = this.size();
        return { kind: 'bits', names, min: s.min, max: s.max, ext: s.ext };
      }
      case 'OCTET': {
        this.expect('STRING');
        const s = this.size();
        if (s.ext) throw new Error('asn: extensible OCTET STRING sizes are not supported');
        return { kind: 'octets', min: s.min, max: s.max };
      }
      case 'IA5String': {
        const s = this.size();
        if (s.ext) throw new Error('asn: extensible IA5String sizes are not supported');
        return { kind: 'ia5', min: s.min, max: s.max };
      }
      case 'SEQUENCE': {
        if (this.peek() === '(') {
          const s = this.size();
          if (s.ext) throw new Error('asn: extensible SEQUENCE OF sizes are not supported');
          this.expect('OF');
          return { kind: 'seqof', min: s.min, max: s.max, of: this.type() };
        }
        const { fields, ext } = this.components(true);
        return { kind: 'seq', fields, ext };
      }
      case 'CHOICE': {
        const { fields, ext } = this.components(false);
        return { kind: 'choice', alts: fields, ext };
      }
      default:
        if (/^[A-Z]/.test(w) && !RESERVED.has(w) && !/String$/.test(w)) return { kind: 'ref', name: w };
        throw new Error(`asn: unsupported type ${w}`);
    }
  }

  components(optionalAllowed: boolean): { fields: AsnField[]; ext: boolean } {
    this.expect('{');
    const fields: AsnField[] = [];
    let ext = false;
    for (;;) {
      const n = this.next();
      if (n === '...') ext = true;
      else {
        if (ext) throw new Error('asn: extension additions are not supported');
        const type = this.type();
        let optional = false;
        if (this.peek() === 'OPTIONAL') {
          if (!optionalAllowed) throw new Error('asn: OPTIONAL in a CHOICE');
          this.next();
          optional = true;
        }
        if (this.peek() === 'DEFAULT') throw new Error('asn: DEFAULT is not supported');
        fields.push({ name: n, type, optional });
      }
      const sep = this.next();
      if (sep === '}') break;
      if (sep !== ',') throw new Error(`asn: expected , or } after ${n}, got ${sep}`);
    }
    return { fields, ext };
  }

  module(): AsnModule {
    const name = this.next();
    for (const k of ['DEFINITIONS', 'AUTOMATIC', 'TAGS', '::=', 'BEGIN']) this.expect(k);
    const types = new Map<string, AsnType>();
    while (this.peek() !== 'END') {
      const w = this.peek();
      if (w === 'EXPORTS' || w === 'IMPORTS') {
        while (this.next() !== ';');
        continue;
      }
      const n = this.next();
      if (this.peek() === '::=') {
        this.next();
        types.set(n, this.type());
      } else {
        // Value assignment `name Type ::= value`: documentation only for the codec.
        this.next();
        this.expect('::=');
        this.next();
      }
    }
    return { name, types };
  }
}

export function parseModule(src: string): AsnModule {
  return new Parser(tokenize(src)).module();
}
