import {
  F2_ONE,
  F2_ZERO,
  type Fp2,
  f2add,
  f2conj,
  f2dbl,
  f2eq,
  f2inv,
  f2isZero,
  f2mul,
  f2neg,
  f2pow,
  f2sqr,
  f2sub,
  N,
  P,
} from './fp2.js';

/**
 * G2 of SM9: points of the sextic twist E'(Fp2): y^2 = x^3 + 5u, in Jacobian coordinates
 * (x = X/Z^2, y = Y/Z^3). Scalar multiplication is variable-time (bigint arithmetic cannot be
 * constant-time); see docs/gm.md.
 */

export interface G2Affine {
  x: Fp2;
  y: Fp2;
}
export interface G2Jac {
  X: Fp2;
  Y: Fp2;
  Z: Fp2;
}

export const B2: Fp2 = [0n, 5n];
export const G2_INF: G2Jac = { X: F2_ONE, Y: F2_ONE, Z: F2_ZERO };

export const g2isInf = (p: G2Jac): boolean => f2isZero(p.Z);
export const g2fromAffine = (a: G2Affine): G2Jac => ({ X: a.x, Y: a.y, Z: F2_ONE });

export function g2onCurve(a: G2Affine): boolean {
  const rhs = f2add(f2mul(f2sqr(a.x), a.x), B2);
  return f2eq(f2sqr(a.y), rhs);
}

export function g2toAffine(p: G2Jac): G2Affine | null {
  if (g2isInf(p)) return null;
  const zi = f2inv(p.Z);
  const zi2 = f2sqr(zi);
  return { x: f2mul(p.X, zi2), y: f2mul(p.Y, f2mul(zi2, zi)) };
}

export function g2neg(p: G2Jac): G2Jac {
  return { X: p.X, Y: f2neg(p.Y), Z: p.Z };
}

/** dbl-2009-l (a = 0). */
export function g2dbl(p: G2Jac): G2Jac {
  if (g2isInf(p)) return p;
  const A = f2sqr(p.X);
  const B = f2sqr(p.Y);
  const C = f2sqr(B);
  const D = f2dbl(f2sub(f2sub(f2sqr(f2add(p.X, B)), A), C));
  const E = f2add(f2dbl(A), A);
  const F = f2sqr(E);
  const X3 = f2sub(F, f2dbl(D));
  const Y3 = f2sub(f2mul(E, f2sub(D, X3)), f2dbl(f2dbl(f2dbl(C))));
  const Z3 = f2dbl(f2mul(p.Y, p.Z));
  return { X: X3, Y: Y3, Z: Z3 };
}

/** add-2007-bl, with the doubling and inverse cases handled. */
export function g2add(p: G2Jac, q: G2Jac): G2Jac {
  if (g2isInf(p)) return q;
  if (g2isInf(q)) return p;
  if (q.Z[0] === 1n && q.Z[1] === 0n) return g2addMixed(p, q);
  const Z1Z1 = f2sqr(p.Z);
  const Z2Z2 = f2sqr(q.Z);
  const U1 = f2mul(p.X, Z2Z2);
  const U2 = f2mul(q.X, Z1Z1);
  const S1 = f2mul(p.Y, f2mul(q.Z, Z2Z2));
  const S2 = f2mul(q.Y, f2mul(p.Z, Z1Z1));
  const H = f2sub(U2, U1);
  const rr = f2sub(S2, S1);
  if (f2isZero(H)) return f2isZero(rr) ? g2dbl(p) : G2_INF;
  const I = f2sqr(f2dbl(H));
  const J = f2mul(H, I);
  const r = f2dbl(rr);
  const V = f2mul(U1, I);
  const X3 = f2sub(f2sub(f2sqr(r), J), f2dbl(V));
  const Y3 = f2sub(f2mul(r, f2sub(V, X3)), f2dbl(f2mul(S1, J)));
  const Z3 = f2mul(f2sub(f2sub(f2sqr(f2add(p.Z, q.Z)), Z1Z1), Z2Z2), H);
  return { X: X3, Y: Y3, Z: Z3 };
}

/** madd-2007-bl: q has Z = 1 (fixed-base tables keep affine points). */
function g2addMixed(p: G2Jac, q: G2Jac): G2Jac {
  const Z1Z1 = f2sqr(p.Z);
  const U2 = f2mul(q.X, Z1Z1);
  const S2 = f2mul(q.Y, f2mul(p.Z, Z1Z1));
  const H = f2sub(U2, p.X);
  const rr = f2sub(S2, p.Y);
  if (f2isZero(H)) return f2isZero(rr) ? g2dbl(p) : G2_INF;
  const HH = f2sqr(H);
  const I = f2dbl(f2dbl(HH));
  const J = f2mul(H, I);
  const r = f2dbl(rr);
  const V = f2mul(p.X, I);
  const X3 = f2sub(f2sub(f2sqr(r), J), f2dbl(V));
  const Y3 = f2sub(f2mul(r, f2sub(V, X3)), f2dbl(f2mul(p.Y, J)));
  const Z3 = f2sub(f2sub(f2sqr(f2add(p.Z, H)), Z1Z1), HH);
  return { X: X3, Y: Y3, Z: Z3 };
}

/** [k]P with a 4-bit fixed window. */
export function g2mul(p: G2Jac, k: bigint): G2Jac {
  const e = ((k % N) + N) % N;
  if (e === 0n || g2isInf(p)) return G2_INF;
  const table: G2Jac[] = [G2_INF, p];
  for (let i = 2; i < 16; i++) table.push(g2add(table[i - 1] as G2Jac, p));
  const hex = e.toString(16);
  let r = G2_INF;
  for (const ch of hex) {
    r = g2dbl(g2dbl(g2dbl(g2dbl(r))));
    const d = Number.parseInt(ch, 16);
    if (d) r = g2add(r, table[d] as G2Jac);
  }
  return r;
}

export function g2eq(p: G2Jac, q: G2Jac): boolean {
  const a = g2toAffine(p);
  const b = g2toAffine(q);
  if (!a || !b) return a === b;
  return f2eq(a.x, b.x) && f2eq(a.y, b.y);
}

/** On the twist and of order N: what a G2 point received from outside must satisfy. */
export function g2inSubgroup(a: G2Affine): boolean {
  if (!g2onCurve(a)) return false;
  // [N]P = O; g2mul reduces mod N, so use [N-1]P = -P instead.
  const q = g2mul(g2fromAffine(a), N - 1n);
  return g2eq(q, g2neg(g2fromAffine(a)));
}

// Frobenius on the twist: pi(x, y) = (conj(x)·u^(-(p-1)/3), conj(y)·u^(-(p-1)/2)), from
// psi(x, y) = (x·w^-2, y·w^-3) and w^6 = u; pi^2 has the same shape with p^2 and no conjugation.
const U: Fp2 = [0n, 1n];
const UINV = f2inv(U);
const PI_X = f2pow(UINV, (P - 1n) / 3n);
const PI_Y = f2pow(UINV, (P - 1n) / 2n);
const PI2_X = f2pow(UINV, (P * P - 1n) / 3n);
const PI2_Y = f2pow(UINV, (P * P - 1n) / 2n);

export function g2frob(a: G2Affine): G2Affine {
  return { x: f2mul(f2conj(a.x), PI_X), y: f2mul(f2conj(a.y), PI_Y) };
}
export function g2frob2(a: G2Affine): G2Affine {
  return { x: f2mul(a.x, PI2_X), y: f2mul(a.y, PI2_Y) };
}
