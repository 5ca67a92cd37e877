/**
 * Random CSAE 53 messages within the ASN.1 constraints, driven by the generated schema: boundary
 * values, OPTIONAL components absent and present, extensible bit strings in and outside their root
 * size. Seeded, so every run tests the same messages.
 */
import type { AsnType } from '../../../../src/v2x/codec/gen/asn.js';
import { SCHEMA } from '../../../../src/v2x/codec/schema.js';
import type { MessageFrame } from '../../../../src/v2x/codec/types.js';

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Mode = 'random' | 'min' | 'max';

export interface GenOptions {
  /** Probability that an OPTIONAL component is present. */
  optional: number;
  /** Integers at their lower bound, upper bound or anywhere (with the bounds favoured). */
  mode: Mode;
  /** IA5 characters: printable only (for XER) or any of 0..127. */
  printable: boolean;
}

export const FRAMES = ['bsmFrame', 'mapFrame', 'rsmFrame', 'spatFrame', 'rsiFrame'] as const;

export function randomMessage(
  rnd: () => number,
  frame: (typeof FRAMES)[number],
  o: GenOptions,
): MessageFrame {
  const mf = SCHEMA.MessageFrame;
  if (mf?.kind !== 'choice') throw new Error('schema lacks MessageFrame');
  const alt = mf.alts.find((a) => a.name === frame)!;
  let budget = 400; // values, so nested MAP lists stay small
  const int = (lb: number, ub: number) => lb + Math.floor(rnd() * (ub - lb + 1));
  const gen = (t: AsnType, depth: number): unknown => {
    budget--;
    const tight = budget <= 0 || depth > 6;
    switch (t.kind) {
      case 'ref':
        return gen(SCHEMA[t.name]!, depth);
      case 'int': {
        if (o.mode === 'min') return t.lb;
        if (o.mode === 'max') return t.ub;
        const r = rnd();
        return r < 0.15 ? t.lb : r < 0.3 ? t.ub : int(t.lb, t.ub);
      }
      case 'enum': {
        const i = o.mode === 'min' ? 0 : o.mode === 'max' ? t.items.length - 1 : int(0, t.items.length - 1);
        return t.items[i];
      }
      case 'bits': {
        let n = o.mode === 'max' ? t.max : o.mode === 'min' ? t.min : int(t.min, t.max);
        if (t.ext && o.mode === 'random' && rnd() < 0.3) n = int(0, t.max + 24);
        let s = '';
        for (let i = 0; i < n; i++) s += rnd() < 0.5 ? '0' : '1';
        return s;
      }
      case 'octets': {
        const n =
          o.mode === 'max' ? t.max : o.mode === 'min' ? t.min : int(t.min, Math.min(t.max, t.min + 20));
        let s = '';
        for (let i = 0; i < n; i++) s += int(0, 255).toString(16).padStart(2, '0');
        return s;
      }
      case 'ia5': {
        const n =
          o.mode === 'max' ? t.max : o.mode === 'min' ? t.min : int(t.min, Math.min(t.max, t.min + 20));
        let s = '';
        for (let i = 0; i < n; i++) s += String.fromCharCode(o.printable ? int(32, 126) : int(0, 127));
        return s;
      }
      case 'seqof': {
        let n: number;
        if (tight) n = t.min;
        else if (o.mode === 'max' && depth < 3) n = Math.min(t.max, 3);
        else n = rnd() < 0.7 ? t.min : int(t.min, Math.min(t.max, t.min + 2));
        if (depth <= 1 && o.mode === 'random' && rnd() < 0.2) n = t.max;
        return Array.from({ length: n }, () => gen(t.of, depth + 1));
      }
      case 'choice': {
        const a = t.alts[int(0, t.alts.length - 1)]!;
        return { [a.name]: gen(a.type, depth + 1) };
      }
      case 'seq': {
        const out: Record<string, unknown> = {};
        for (const f of t.fields) {
          if (f.optional && (tight || rnd() >= o.optional)) continue;
          out[f.name] = gen(f.type, depth + 1);
        }
        return out;
      }
    }
  };
  return { [frame]: gen(alt.type, 0) } as MessageFrame;
}
