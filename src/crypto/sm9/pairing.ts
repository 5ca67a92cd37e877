import { type Fp2, f2add, f2dbl, f2mul, f2mulFp, f2neg, f2sqr, f2sub, fpInv, md, T } from './fp2.js';
import {
  type Fp12,
  fp12conj,
  fp12cycPow,
  fp12cycSqr,
  fp12frob,
  fp12inv,
  fp12mul,
  fp12mulLine,
  fp12sqr,
  naf,
} from './fp12.js';
import { B2, type G2Affine, g2frob, g2frob2 } from './g2.js';

/**
 * The R-ate pairing of GM/T 0044 part 1: e(P, Q) = (f_{a,Q}(P) · l_{aQ,pi(Q)}(P) ·
 * l_{aQ+pi(Q),-pi^2(Q)}(P))^((p^12-1)/N) with a = 6t + 2, P in G1 (affine over Fp) and Q in G2.
 *
 * Q's part of every line depends on Q only, so `prepareG2` runs the point arithmetic once and keeps
 * the coefficients; `millerLoop` then needs only P. A fixed Q (a user's decryption key, a device's
 * verification point) is prepared once and reused.
 *
 * Lines, with psi(x', y') = (x' w^-2, y' w^-3) and scaled by w^3 and by factors in Fp2 (killed by
 * the final exponentiation), have the sparse shape l0 + (a·xP) w^2 + (b·yP) w^3.
 */

export interface LineCoeffs {
  l0: Fp2;
  a: Fp2;
  b: Fp2;
}

/** Lines in the order the Miller loop uses them. */
export interface PreparedG2 {
  readonly lines: readonly LineCoeffs[];
}

// The loop count a = 6t + 2 in NAF (10 additions instead of 15); T's NAF for the final exponentiation.
export const LOOP = naf(6n * T + 2n);
export const T_NAF = naf(T);
const INV2 = fpInv(2n);
const B3 = f2add(f2dbl(B2), B2); // 3b'

interface Hom {
  X: Fp2;
  Y: Fp2;
  Z: Fp2;
}

/** Doubling step on homogeneous T (x = X/Z, y = Y/Z); Costello–Lange–Naehrig formulas, a = 0. */
function dblStep(t: Hom): { t: Hom; line: LineCoeffs } {
  const { X, Y, Z } = t;
  const A = f2mulFp(f2mul(X, Y), INV2);
  const B = f2sqr(Y);
  const C = f2sqr(Z);
  const E = f2mul(B3, C);
  const F = f2add(f2dbl(E), E);
  const G = f2mulFp(f2add(B, F), INV2);
  const H = f2sub(f2sqr(f2add(Y, Z)), f2add(B, C));
  const X2 = f2sqr(X);
  const line = { l0: f2sub(B, E), a: f2neg(f2add(f2dbl(X2), X2)), b: H };
  const E2 = f2sqr(E);
  return {
    t: { X: f2mul(A, f2sub(B, F)), Y: f2sub(f2sqr(G), f2add(f2dbl(E2), E2)), Z: f2mul(B, H) },
    line,
  };
}

/** Mixed addition T + Q (Q affine), with the line through T and Q. */
function addStep(t: Hom, q: G2Affine): { t: Hom; line: LineCoeffs } {
  const { X, Y, Z } = t;
  const theta = f2sub(Y, f2mul(q.y, Z));
  const lambda = f2sub(X, f2mul(q.x, Z));
  const C = f2sqr(theta);
  const D = f2sqr(lambda);
  const E = f2mul(D, lambda);
  const F = f2mul(Z, C);
  const G = f2mul(X, D);
  const H = f2sub(f2add(E, F), f2dbl(G));
  const line = { l0: f2sub(f2mul(theta, q.x), f2mul(lambda, q.y)), a: f2neg(theta), b: lambda };
  return {
    t: { X: f2mul(lambda, H), Y: f2sub(f2mul(theta, f2sub(G, H)), f2mul(Y, E)), Z: f2mul(Z, E) },
    line,
  };
}

export function prepareG2(q: G2Affine): PreparedG2 {
  const lines: LineCoeffs[] = [];
  const negQ = { x: q.x, y: f2neg(q.y) };
  let t: Hom = { X: q.x, Y: q.y, Z: [1n, 0n] };
  for (let i = 1; i < LOOP.length; i++) {
    const d = dblStep(t);
    lines.push(d.line);
    t = d.t;
    // A subtraction's line differs from the binary loop's by vertical lines, whose values at P lie
    // in Fp6 and vanish in the final exponentiation: the pairing value is the same.
    if (LOOP[i] !== 0) {
      const a = addStep(t, LOOP[i] === 1 ? q : negQ);
      lines.push(a.line);
      t = a.t;
    }
  }
  const q1 = g2frob(q);
  const q2 = g2frob2(q);
  const a1 = addStep(t, q1);
  lines.push(a1.line);
  lines.push(addStep(a1.t, { x: q2.x, y: f2neg(q2.y) }).line);
  return { lines };
}

/** P = (xP, yP) affine in G1 (not infinity). */
export function millerLoop(prepared: PreparedG2, xP: bigint, yP: bigint): Fp12 {
  const { lines } = prepared;
  let j = 0;
  // f times the next line at P; f = null stands for 1 (the first step is then the line itself).
  const apply = (f: Fp12 | null): Fp12 => {
    const l = lines[j++] as LineCoeffs;
    const l2: Fp2 = [md(l.a[0] * xP), md(l.a[1] * xP)];
    const l3: Fp2 = [md(l.b[0] * yP), md(l.b[1] * yP)];
    if (f) return fp12mulLine(f, l.l0, l2, l3);
    return [l.l0[0], l.l0[1], 0n, 0n, l2[0], l2[1], l3[0], l3[1], 0n, 0n, 0n, 0n];
  };
  let f = apply(null);
  if (LOOP[1] !== 0) f = apply(f);
  for (let i = 2; i < LOOP.length; i++) {
    f = apply(fp12sqr(f));
    if (LOOP[i] !== 0) f = apply(f);
  }
  f = apply(f);
  return apply(f);
}

/**
 * f^((p^12-1)/N): the easy part f^((p^6-1)(p^2+1)) with one inversion and Frobenius maps, then the
 * hard part (p^4-p^2+1)/N by the BN addition chain of Scott et al. (three exponentiations by t).
 */
export function finalExp(f: Fp12): Fp12 {
  let t1 = fp12mul(fp12conj(f), fp12inv(f));
  t1 = fp12mul(t1, fp12frob(t1, 2));
  const fp = fp12frob(t1, 1);
  const fp2 = fp12frob(t1, 2);
  const fp3 = fp12frob(fp2, 1);
  const fu = fp12cycPow(t1, T, T_NAF);
  const fu2 = fp12cycPow(fu, T, T_NAF);
  const fu3 = fp12cycPow(fu2, T, T_NAF);
  const y3 = fp12conj(fp12frob(fu, 1));
  const fu2p = fp12frob(fu2, 1);
  const fu3p = fp12frob(fu3, 1);
  const y2 = fp12frob(fu2, 2);
  const y0 = fp12mul(fp12mul(fp, fp2), fp3);
  const y1 = fp12conj(t1);
  const y5 = fp12conj(fu2);
  const y4 = fp12conj(fp12mul(fu, fu2p));
  const y6 = fp12conj(fp12mul(fu3, fu3p));
  let t0 = fp12mul(fp12mul(fp12cycSqr(y6), y4), y5);
  let u1 = fp12mul(fp12mul(y3, y5), t0);
  t0 = fp12mul(t0, y2);
  u1 = fp12cycSqr(fp12mul(fp12cycSqr(u1), t0));
  t0 = fp12mul(u1, y1);
  u1 = fp12mul(u1, y0);
  return fp12mul(fp12cycSqr(t0), u1);
}

export function pairing(xP: bigint, yP: bigint, q: G2Affine | PreparedG2): Fp12 {
  const prepared = 'lines' in q ? q : prepareG2(q);
  return finalExp(millerLoop(prepared, xP, yP));
}
