/**
 * XER (asn1c's XML) for the cross-check: our JSON rendered as the XER asn1c reads (-ixer), and
 * asn1c's XER output (-oxer) parsed back into our JSON convention, both driven by the schema. The
 * conventions: SEQUENCE/CHOICE components as elements named after them, ENUMERATED as an empty
 * element `<forwardGears/>`, SEQUENCE OF elements wrapped in their type's name (`<Lane>`), BIT STRING
 * as 0/1 characters and OCTET STRING as hex (asn1c spaces and wraps both; whitespace is dropped).
 */
import type { AsnType } from '../../../../src/v2x/codec/gen/asn.js';
import { SCHEMA } from '../../../../src/v2x/codec/schema.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function resolve(t: AsnType): AsnType {
  return t.kind === 'ref' ? resolve(SCHEMA[t.name]!) : t;
}

function body(t: AsnType, v: unknown): string {
  const r = resolve(t);
  switch (r.kind) {
    case 'int':
      return String(v);
    case 'enum':
      return `<${v as string}/>`;
    case 'bits':
    case 'octets':
      return v as string;
    case 'ia5':
      return esc(v as string);
    case 'seq': {
      const o = v as Record<string, unknown>;
      return r.fields
        .filter((f) => o[f.name] !== undefined)
        .map((f) => `<${f.name}>${body(f.type, o[f.name])}</${f.name}>`)
        .join('');
    }
    case 'choice': {
      const [k, x] = Object.entries(v as Record<string, unknown>)[0]!;
      const a = r.alts.find((c) => c.name === k)!;
      return `<${k}>${body(a.type, x)}</${k}>`;
    }
    case 'seqof': {
      if (r.of.kind !== 'ref') throw new Error('inline SEQUENCE OF element');
      const tag = r.of.name;
      return (v as unknown[]).map((e) => `<${tag}>${body(r.of, e)}</${tag}>`).join('');
    }
    case 'ref':
      throw new Error('unresolved');
  }
}

export function toXer(msg: unknown): string {
  return `<MessageFrame>${body({ kind: 'ref', name: 'MessageFrame' }, msg)}</MessageFrame>`;
}

interface XNode {
  name: string;
  kids: XNode[];
  text: string;
}

/** Parses the XML subset asn1c writes: elements, empty elements, text with the five entities. */
export function parseXml(src: string): XNode[] {
  const top: XNode = { name: '', kids: [], text: '' };
  const stack = [top];
  const re = /<(\/?)([A-Za-z][\w.-]*)\s*(\/?)>|([^<]+)/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const cur = stack[stack.length - 1]!;
    if (m[4] !== undefined) {
      cur.text += m[4]
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, '&');
    } else if (m[1]) {
      if (cur.name !== m[2]) throw new Error(`XER: </${m[2]}> closes <${cur.name}>`);
      stack.pop();
    } else {
      const n: XNode = { name: m[2]!, kids: [], text: '' };
      cur.kids.push(n);
      if (!m[3]) stack.push(n);
    }
  }
  if (stack.length !== 1) throw new Error('XER: unclosed element');
  return top.kids;
}

function fromNode(t: AsnType, n: XNode): unknown {
  const r = resolve(t);
  switch (r.kind) {
    case 'int':
      return Number(n.text.trim());
    case 'enum':
      if (n.kids.length !== 1) throw new Error(`XER: <${n.name}> is not an enumerated value`);
      return n.kids[0]!.name;
    case 'bits':
      return n.text.replace(/\s+/g, '');
    case 'octets':
      return n.text.replace(/\s+/g, '').toLowerCase();
    case 'ia5':
      return n.text;
    case 'seq': {
      const o: Record<string, unknown> = {};
      for (const k of n.kids) {
        const f = r.fields.find((x) => x.name === k.name);
        if (!f) throw new Error(`XER: unknown component <${k.name}> in <${n.name}>`);
        o[k.name] = fromNode(f.type, k);
      }
      return o;
    }
    case 'choice': {
      const k = n.kids[0];
      const a = k && r.alts.find((x) => x.name === k.name);
      if (!k || !a || n.kids.length !== 1) throw new Error(`XER: <${n.name}> is not a CHOICE value`);
      return { [k.name]: fromNode(a.type, k) };
    }
    case 'seqof':
      return n.kids.map((k) => fromNode(r.of, k));
    case 'ref':
      throw new Error('unresolved');
  }
}

/** asn1c's XER output (one or more `<MessageFrame>` documents) as our JSON values. */
export function fromXer(src: string): unknown[] {
  return parseXml(src).map((n) => {
    if (n.name !== 'MessageFrame') throw new Error(`XER: top element <${n.name}>`);
    return fromNode({ kind: 'ref', name: 'MessageFrame' }, n);
  });
}
