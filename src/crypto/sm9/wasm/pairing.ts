import { COMPRESS_RUN, type Fp12 } from '../fp12.js';
import { finalExp, LOOP, millerLoop as millerLoopBig, type PreparedG2, T_NAF } from '../pairing.js';
import {
  fpToWords,
  loadWords,
  readFp12,
  slot,
  sm9Field,
  wasmAvailable,
  writeFp,
  writeFp12,
  writeFp12One,
} from './field.js';
import { decompressInPlace, f12InvInto } from './inverse.js';

/**
 * The pairing of ../pairing.ts (same Miller loop, lines and final-exponentiation chain) on the wasm
 * field: the Fp12 accumulator and every temporary live in the module's memory for the whole
 * pairing; its four inversions (the easy part's, one per decompression) come down to one Fp
 * inversion each on a bigint (inverse.ts).
 */

const XP = slot(32);
const YP = XP + 32;
const LINES = YP + 32;
const LINE_WORDS = 48;

/** A prepared point's lines [l0, a, b] in Montgomery words, made once per PreparedG2. */
const lineWords = new WeakMap<PreparedG2, Uint32Array>();
function wordsOf(prepared: PreparedG2): Uint32Array {
  let w = lineWords.get(prepared);
  if (!w) {
    w = new Uint32Array(prepared.lines.length * LINE_WORDS);
    prepared.lines.forEach((l, i) => {
      const at = i * LINE_WORDS;
      [l.l0[0], l.l0[1], l.a[0], l.a[1], l.b[0], l.b[1]].forEach((x, k) => {
        fpToWords(x, w as Uint32Array, at + 8 * k);
      });
    });
    lineWords.set(prepared, w);
  }
  return w;
}

function millerInto(f: number, prepared: PreparedG2, xP: bigint, yP: bigint): void {
  const F = sm9Field();
  loadWords(LINES, wordsOf(prepared));
  writeFp(XP, xP);
  writeFp(YP, yP);
  writeFp12One(f);
  let j = 0;
  const apply = () => F.f12_mulLineAt(f, f, LINES + 4 * LINE_WORDS * j++, XP, YP);
  apply();
  if (LOOP[1] !== 0) apply();
  for (let i = 2; i < LOOP.length; i++) {
    F.f12_sqr(f, f);
    apply();
    if (LOOP[i] !== 0) apply();
  }
  apply();
  apply();
}

const INV = slot(20);
const C = slot(21);

/** a^(2^n) in place, compressed (Karabina) when the run is long, as fp12cycSqrN. */
function cycSqrN(a: number, n: number): void {
  const F = sm9Field();
  if (n > COMPRESS_RUN) {
    F.f12_copy(C, a);
    for (let i = 0; i < n; i++) F.f12_cSqr(C, C);
    if (decompressInPlace(C)) {
      F.f12_copy(a, C);
      return;
    }
  }
  for (let i = 0; i < n; i++) F.f12_cycSqr(a, a);
}

/** dst = a^e (cyclotomic, e given as NAF digits, most significant first); dst !== a. */
function cycPowInto(dst: number, a: number, digits: Int8Array): void {
  const F = sm9Field();
  F.f12_conj(INV, a);
  let started = false;
  let run = 0;
  for (const d of digits) {
    if (started) run++;
    if (d === 0) continue;
    const x = d === 1 ? a : INV;
    if (started) {
      cycSqrN(dst, run);
      F.f12_mul(dst, dst, x);
    } else {
      F.f12_copy(dst, x);
      started = true;
    }
    run = 0;
  }
  if (started) cycSqrN(dst, run);
  else writeFp12One(dst);
}

/** r = f^((p^12-1)/N), the chain of ../pairing.ts finalExp; r may be f. */
function finalExpInto(r: number, f: number): void {
  const F = sm9Field();
  const [t1, fp, fp2, fp3, fu, fu2, fu3, y3, fu2p, fu3p, y2, y0, y1, y5, y4, y6, t0, u1] = Array.from(
    { length: 18 },
    (_, i) => slot(i),
  ) as number[] as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  f12InvInto(fp, f);
  F.f12_conj(t1, f);
  F.f12_mul(t1, t1, fp);
  F.f12_frob2(fp, t1);
  F.f12_mul(t1, t1, fp);
  F.f12_frob1(fp, t1);
  F.f12_frob2(fp2, t1);
  F.f12_frob1(fp3, fp2);
  cycPowInto(fu, t1, T_NAF);
  cycPowInto(fu2, fu, T_NAF);
  cycPowInto(fu3, fu2, T_NAF);
  F.f12_frob1(y3, fu);
  F.f12_conj(y3, y3);
  F.f12_frob1(fu2p, fu2);
  F.f12_frob1(fu3p, fu3);
  F.f12_frob2(y2, fu2);
  F.f12_mul(y0, fp, fp2);
  F.f12_mul(y0, y0, fp3);
  F.f12_conj(y1, t1);
  F.f12_conj(y5, fu2);
  F.f12_mul(y4, fu, fu2p);
  F.f12_conj(y4, y4);
  F.f12_mul(y6, fu3, fu3p);
  F.f12_conj(y6, y6);
  F.f12_cycSqr(t0, y6);
  F.f12_mul(t0, t0, y4);
  F.f12_mul(t0, t0, y5);
  F.f12_mul(u1, y3, y5);
  F.f12_mul(u1, u1, t0);
  F.f12_mul(t0, t0, y2);
  F.f12_cycSqr(u1, u1);
  F.f12_mul(u1, u1, t0);
  F.f12_cycSqr(u1, u1);
  F.f12_mul(t0, u1, y1);
  F.f12_mul(u1, u1, y0);
  F.f12_cycSqr(t0, t0);
  F.f12_mul(r, t0, u1);
}

const ACC = slot(18);

/** e(P, Q) for a prepared Q and P = (xP, yP) affine in G1 (not infinity). */
export function pairPrepared(prepared: PreparedG2, xP: bigint, yP: bigint): Fp12 {
  // `node --jitless` has no WebAssembly: the bigint code of ../pairing.ts gives the same value.
  if (!wasmAvailable()) return finalExp(millerLoopBig(prepared, xP, yP));
  millerInto(ACC, prepared, xP, yP);
  finalExpInto(ACC, ACC);
  return readFp12(ACC);
}

/** The Miller loop alone (tests compare it with the bigint one). */
export function millerLoopWasm(prepared: PreparedG2, xP: bigint, yP: bigint): Fp12 {
  millerInto(ACC, prepared, xP, yP);
  return readFp12(ACC);
}

/** The final exponentiation alone, of any f (tests). */
export function finalExpWasm(f: Fp12): Fp12 {
  writeFp12(ACC, f);
  finalExpInto(ACC, ACC);
  return readFp12(ACC);
}

/** a^e in the cyclotomic subgroup, e > 0 public (tests). */
export function cycPowWasm(a: Fp12, digits: Int8Array): Fp12 {
  writeFp12(slot(19), a);
  cycPowInto(ACC, slot(19), digits);
  return readFp12(ACC);
}
