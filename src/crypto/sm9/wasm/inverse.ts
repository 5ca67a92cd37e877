import { fpInv } from '../fp2.js';
import { FP_ONE, f2IsZero, readFp, slot, sm9Field, writeFp } from './field.js';

/**
 * Inversions on the wasm field. The tower goes down to one Fp inversion, done on a bigint (an
 * extended Euclid, ~10 µs, is cheaper than a Fermat chain of ~380 wasm products, ~35 µs); it runs
 * on public values only (pairing values in the final exponentiation).
 */

const N0 = slot(30);
const N1 = N0 + 32;

/** r = a^-1 in Fp2: (a0 - a1 u) / (a0^2 + 2 a1^2). */
export function f2InvInto(r: number, a: number): void {
  const F = sm9Field();
  F.fp_mul(N0, a, a);
  F.fp_mul(N1, a + 32, a + 32);
  F.fp_add(N1, N1, N1);
  F.fp_add(N0, N0, N1);
  writeFp(N0, fpInv(readFp(N0)));
  F.fp_mul(r, a, N0);
  F.fp_mul(r + 32, a + 32, N0);
  F.fp_neg(r + 32, r + 32);
}

const S = slot(29);

/** r = (x0 + x1 v)^-1 = (x0 - x1 v) / (x0^2 - u x1^2) in Fp4. */
function f4InvInto(r: number, x: number): void {
  const F = sm9Field();
  F.f2_sqr(S, x);
  F.f2_sqr(S + 64, x + 64);
  F.f2_mulU(S + 64, S + 64);
  F.f2_sub(S + 128, S, S + 64);
  f2InvInto(S + 192, S + 128);
  F.f2_mul(r, x, S + 192);
  F.f2_mul(r + 64, x + 64, S + 192);
  F.f2_neg(r + 64, r + 64);
}

const [T0, T1, T2] = [slot(27), slot(27) + 128, slot(27) + 256];
const [X, Y, NORM] = [slot(28), slot(28) + 128, slot(28) + 256];

/** r = a^-1 in Fp12 (r may be a), as fp12inv: cofactors t_i over Fp4 and the norm's inverse. */
export function f12InvInto(r: number, a: number): void {
  const F = sm9Field();
  const [A0, A1, A2] = [a, a + 128, a + 256];
  F.f4_sqr(X, A0);
  F.f4_mul(Y, A1, A2);
  F.f4_mulV(Y, Y);
  F.f4_sub(T0, X, Y);
  F.f4_sqr(X, A2);
  F.f4_mulV(X, X);
  F.f4_mul(Y, A0, A1);
  F.f4_sub(T1, X, Y);
  F.f4_sqr(X, A1);
  F.f4_mul(Y, A0, A2);
  F.f4_sub(T2, X, Y);
  F.f4_mul(X, A2, T1);
  F.f4_mul(Y, A1, T2);
  F.f4_add(X, X, Y);
  F.f4_mulV(X, X);
  F.f4_mul(Y, A0, T0);
  F.f4_add(NORM, X, Y);
  f4InvInto(X, NORM);
  F.f4_mul(r, T0, X);
  F.f4_mul(r + 128, T1, X);
  F.f4_mul(r + 256, T2, X);
}

/**
 * Recovers A0 of a Karabina-compressed cyclotomic element in place (A1 = (g2, g3), A2 = (g4, g5)):
 * g1 = (u g5^2 + 3 g4^2 - 2 g3) / (4 g2), g0 = u (2 g1^2 + g2 g5 - 3 g3 g4) + 1. False when g2 = 0
 * (then the caller squares the long way, as fp12cycSqrN does).
 */
export function decompressInPlace(c: number): boolean {
  const F = sm9Field();
  const [g2, g3, g4, g5] = [c + 128, c + 192, c + 256, c + 320];
  if (f2IsZero(g2)) return false;
  const [t0, t1, t2, g1] = [X, X + 64, X + 128, X + 192];
  F.f2_sqr(t0, g5);
  F.f2_mulU(t0, t0);
  F.f2_sqr(t1, g4);
  F.f2_add(t2, t1, t1);
  F.f2_add(t1, t2, t1);
  F.f2_add(t0, t0, t1);
  F.f2_add(t1, g3, g3);
  F.f2_sub(t0, t0, t1);
  F.f2_add(t1, g2, g2);
  F.f2_add(t1, t1, t1);
  f2InvInto(t1, t1);
  F.f2_mul(g1, t0, t1);
  F.f2_sqr(t0, g1);
  F.f2_add(t0, t0, t0);
  F.f2_mul(t1, g2, g5);
  F.f2_add(t0, t0, t1);
  F.f2_mul(t1, g3, g4);
  F.f2_add(t2, t1, t1);
  F.f2_add(t1, t2, t1);
  F.f2_sub(t0, t0, t1);
  F.f2_mulU(t0, t0);
  F.fp_add(t0, t0, FP_ONE);
  F.f2_copy(c, t0);
  F.f2_copy(c + 64, g1);
  return true;
}
