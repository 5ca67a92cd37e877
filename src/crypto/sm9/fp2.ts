/**
 * Base field Fp and its quadratic extension Fp2 = Fp[u]/(u^2 + 2) of the SM9 BN256 curve
 * (GM/T 0044). Elements of Fp2 are [a0, a1] = a0 + a1·u, always reduced into [0, p).
 */

export const P = 0xb640000002a3a6f1d603ab4ff58ec74521f2934b1a7aeedbe56f9b27e351457dn;
/** Order of G1, G2 and GT. */
export const N = 0xb640000002a3a6f1d603ab4ff58ec74449f2934b18ea8beee56ee19cd69ecf25n;
/** The BN parameter t: p = 36t^4 + 36t^3 + 24t^2 + 6t + 1. */
export const T = 0x600000000058f98an;

export type Fp2 = readonly [bigint, bigint];

export function md(x: bigint): bigint {
  const r = x % P;
  return r < 0n ? r + P : r;
}

export function fpInv(a: bigint): bigint {
  let [r0, r1] = [md(a), P];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('zero has no inverse');
  return md(s0);
}

export function fpPow(a: bigint, e: bigint): bigint {
  let r = 1n;
  let b = md(a);
  for (let x = e; x > 0n; x >>= 1n) {
    if (x & 1n) r = (r * b) % P;
    b = (b * b) % P;
  }
  return r;
}

export const F2_ZERO: Fp2 = [0n, 0n];
export const F2_ONE: Fp2 = [1n, 0n];

export const f2 = (a0: bigint, a1: bigint): Fp2 => [md(a0), md(a1)];
export const f2add = (a: Fp2, b: Fp2): Fp2 => [md(a[0] + b[0]), md(a[1] + b[1])];
export const f2sub = (a: Fp2, b: Fp2): Fp2 => [md(a[0] - b[0]), md(a[1] - b[1])];
export const f2neg = (a: Fp2): Fp2 => [md(-a[0]), md(-a[1])];
export const f2dbl = (a: Fp2): Fp2 => [md(a[0] << 1n), md(a[1] << 1n)];
export const f2conj = (a: Fp2): Fp2 => [a[0], md(-a[1])];
export const f2eq = (a: Fp2, b: Fp2): boolean => a[0] === b[0] && a[1] === b[1];
export const f2isZero = (a: Fp2): boolean => a[0] === 0n && a[1] === 0n;
export const f2mulFp = (a: Fp2, k: bigint): Fp2 => [md(a[0] * k), md(a[1] * k)];
/** a·u = -2·a1 + a0·u. */
export const f2mulU = (a: Fp2): Fp2 => [md(-2n * a[1]), a[0]];

export function f2mul(a: Fp2, b: Fp2): Fp2 {
  const t0 = a[0] * b[0];
  const t1 = a[1] * b[1];
  return [md(t0 - 2n * t1), md((a[0] + a[1]) * (b[0] + b[1]) - t0 - t1)];
}

export function f2sqr(a: Fp2): Fp2 {
  const t = a[0] * a[1];
  return [md((a[0] + a[1]) * (a[0] - 2n * a[1]) + t), md(t << 1n)];
}

export function f2inv(a: Fp2): Fp2 {
  const inv = fpInv(a[0] * a[0] + 2n * a[1] * a[1]);
  return [md(a[0] * inv), md(-a[1] * inv)];
}

export function f2pow(a: Fp2, e: bigint): Fp2 {
  let r = F2_ONE;
  let b = a;
  for (let x = e; x > 0n; x >>= 1n) {
    if (x & 1n) r = f2mul(r, b);
    b = f2sqr(b);
  }
  return r;
}
