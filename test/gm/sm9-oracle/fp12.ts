import { type Fp2, f2conj, f2inv, f2mul, f2pow, md, P } from '../../../src/crypto/sm9/fp2.js';

/**
 * Fp12 of SM9 (GM/T 0044): Fp4 = Fp2[v]/(v^2 - u), Fp12 = Fp4[w]/(w^3 - v), so w^6 = u.
 * An element is 12 bigints: the Fp2 coefficients c0..c5 of 1, w, ..., w^5, each as (re, u-part):
 * f[2k] + f[2k+1]·u is the coefficient of w^k. In tower terms A_i = c_i + c_{i+3}·v (i = 0, 1, 2).
 *
 * Products are formed on unreduced bigints (Karatsuba over the tower) and reduced once per output
 * coefficient: a 256-bit multiply costs a fraction of a modular reduction in V8.
 */

export type Fp12 = bigint[];

export const fp12One = (): Fp12 => [1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n];

export function fp12eq(a: Fp12, b: Fp12): boolean {
  for (let i = 0; i < 12; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const fp12isOne = (a: Fp12): boolean => fp12eq(a, fp12One());

/** Unreduced Fp4 product of (a0 + a1 u) + (a2 + a3 u) v and (b0 + ...): returns [r0, r1, r2, r3]. */
function m4(
  a0: bigint,
  a1: bigint,
  a2: bigint,
  a3: bigint,
  b0: bigint,
  b1: bigint,
  b2: bigint,
  b3: bigint,
): [bigint, bigint, bigint, bigint] {
  // t0 = A0·B0, t1 = A1·B1 in Fp2 (u^2 = -2), Karatsuba.
  const x0 = a0 * b0;
  const x1 = a1 * b1;
  const t00 = x0 - 2n * x1;
  const t01 = (a0 + a1) * (b0 + b1) - x0 - x1;
  const y0 = a2 * b2;
  const y1 = a3 * b3;
  const t10 = y0 - 2n * y1;
  const t11 = (a2 + a3) * (b2 + b3) - y0 - y1;
  // (A0 + A1)(B0 + B1) - t0 - t1
  const s0 = a0 + a2;
  const s1 = a1 + a3;
  const r0 = b0 + b2;
  const r1 = b1 + b3;
  const z0 = s0 * r0;
  const z1 = s1 * r1;
  const m0 = z0 - 2n * z1 - t00 - t10;
  const m1 = (s0 + s1) * (r0 + r1) - z0 - z1 - t01 - t11;
  // r = t0 + u·t1 + m·v, with u·(t10 + t11 u) = -2 t11 + t10 u.
  return [t00 - 2n * t11, t01 + t10, m0, m1];
}

/** Fp4 element A_i of f as 4 bigints. */
function a4(f: Fp12, i: number): [bigint, bigint, bigint, bigint] {
  return [f[2 * i] as bigint, f[2 * i + 1] as bigint, f[2 * i + 6] as bigint, f[2 * i + 7] as bigint];
}

/** Writes Fp4 values C0, C1, C2 (unreduced) into a reduced Fp12. */
function pack(c0: bigint[], c1: bigint[], c2: bigint[]): Fp12 {
  return [
    md(c0[0] as bigint),
    md(c0[1] as bigint),
    md(c1[0] as bigint),
    md(c1[1] as bigint),
    md(c2[0] as bigint),
    md(c2[1] as bigint),
    md(c0[2] as bigint),
    md(c0[3] as bigint),
    md(c1[2] as bigint),
    md(c1[3] as bigint),
    md(c2[2] as bigint),
    md(c2[3] as bigint),
  ];
}

/** v·X for X = X0 + X1 v in Fp4: u·X1 + X0·v. */
function mulV(x: bigint[]): bigint[] {
  return [-2n * (x[3] as bigint), x[2] as bigint, x[0] as bigint, x[1] as bigint];
}

const add4 = (a: bigint[], b: bigint[]): bigint[] => [
  (a[0] as bigint) + (b[0] as bigint),
  (a[1] as bigint) + (b[1] as bigint),
  (a[2] as bigint) + (b[2] as bigint),
  (a[3] as bigint) + (b[3] as bigint),
];
const sub4 = (a: bigint[], b: bigint[]): bigint[] => [
  (a[0] as bigint) - (b[0] as bigint),
  (a[1] as bigint) - (b[1] as bigint),
  (a[2] as bigint) - (b[2] as bigint),
  (a[3] as bigint) - (b[3] as bigint),
];
const mul4 = (a: bigint[], b: bigint[]): bigint[] =>
  m4(
    a[0] as bigint,
    a[1] as bigint,
    a[2] as bigint,
    a[3] as bigint,
    b[0] as bigint,
    b[1] as bigint,
    b[2] as bigint,
    b[3] as bigint,
  );

export function fp12mul(a: Fp12, b: Fp12): Fp12 {
  // Scalars rather than small arrays: this runs thousands of times per pairing.
  const [a00, a01, a10, a11, a20, a21, a02, a03, a12, a13, a22, a23] = a as B12;
  const [b00, b01, b10, b11, b20, b21, b02, b03, b12, b13, b22, b23] = b as B12;
  const v0 = m4(a00, a01, a02, a03, b00, b01, b02, b03);
  const v1 = m4(a10, a11, a12, a13, b10, b11, b12, b13);
  const v2 = m4(a20, a21, a22, a23, b20, b21, b22, b23);
  // Karatsuba over the cubic extension, w^3 = v; v·(x0, x1, x2, x3) = (-2·x3, x2, x0, x1).
  const t = m4(a10 + a20, a11 + a21, a12 + a22, a13 + a23, b10 + b20, b11 + b21, b12 + b22, b13 + b23);
  const s0 = t[0] - v1[0] - v2[0];
  const s1 = t[1] - v1[1] - v2[1];
  const s2 = t[2] - v1[2] - v2[2];
  const s3 = t[3] - v1[3] - v2[3];
  const u = m4(a00 + a10, a01 + a11, a02 + a12, a03 + a13, b00 + b10, b01 + b11, b02 + b12, b03 + b13);
  const r = m4(a00 + a20, a01 + a21, a02 + a22, a03 + a23, b00 + b20, b01 + b21, b02 + b22, b03 + b23);
  return [
    md(v0[0] - 2n * s3),
    md(v0[1] + s2),
    md(u[0] - v0[0] - v1[0] - 2n * v2[3]),
    md(u[1] - v0[1] - v1[1] + v2[2]),
    md(r[0] - v0[0] - v2[0] + v1[0]),
    md(r[1] - v0[1] - v2[1] + v1[1]),
    md(v0[2] + s0),
    md(v0[3] + s1),
    md(u[2] - v0[2] - v1[2] + v2[0]),
    md(u[3] - v0[3] - v1[3] + v2[1]),
    md(r[2] - v0[2] - v2[2] + v1[2]),
    md(r[3] - v0[3] - v2[3] + v1[3]),
  ];
}

type B12 = [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];

export function fp12sqr(a: Fp12): Fp12 {
  // Chung–Hasan SQR2: C0 = A0^2 + v·2A1A2, C1 = 2A0A1 + v·A2^2, C2 = A1^2 + 2A0A2.
  const A0 = a4(a, 0);
  const A1 = a4(a, 1);
  const A2 = a4(a, 2);
  const q0 = s4(...A0);
  const q1 = mul4(A0, A1);
  const q2 = s4(...A1);
  const q3 = mul4(A1, A2);
  const q4 = s4(...A2);
  const q5 = mul4(A0, A2);
  const c0 = add4(q0, mulV(add4(q3, q3)));
  const c1 = add4(add4(q1, q1), mulV(q4));
  const c2 = add4(q2, add4(q5, q5));
  return pack(c0, c1, c2);
}

/**
 * f times a line l0 + l2·w^2 + l3·w^3 (l0, l2, l3 in Fp2), the sparse shape every Miller-loop line
 * has here: L0 = l0 + l3·v, L2 = l2.
 */
export function fp12mulLine(f: Fp12, l0: Fp2, l2: Fp2, l3: Fp2): Fp12 {
  const L0 = [l0[0], l0[1], l3[0], l3[1]];
  const A0 = a4(f, 0);
  const A1 = a4(f, 1);
  const A2 = a4(f, 2);
  // A·l2 for A in Fp4 and l2 in Fp2: both halves times l2.
  const byL2 = (x: bigint[]): bigint[] => {
    const p0 = (x[0] as bigint) * l2[0];
    const p1 = (x[1] as bigint) * l2[1];
    const q0 = (x[2] as bigint) * l2[0];
    const q1 = (x[3] as bigint) * l2[1];
    return [
      p0 - 2n * p1,
      ((x[0] as bigint) + (x[1] as bigint)) * (l2[0] + l2[1]) - p0 - p1,
      q0 - 2n * q1,
      ((x[2] as bigint) + (x[3] as bigint)) * (l2[0] + l2[1]) - q0 - q1,
    ];
  };
  const c0 = add4(mul4(A0, L0), mulV(byL2(A1)));
  const c1 = add4(mul4(A1, L0), mulV(byL2(A2)));
  const c2 = add4(mul4(A2, L0), byL2(A0));
  return pack(c0, c1, c2);
}

// Reduced Fp4 helpers for the (rare) inversion.
type F4 = bigint[];
const r4 = (x: bigint[]): F4 => x.map(md);
const f4mul = (a: F4, b: F4): F4 => r4(mul4(a, b));
const f4sub = (a: F4, b: F4): F4 => r4(sub4(a, b));
const f4add = (a: F4, b: F4): F4 => r4(add4(a, b));
const f4mulV = (a: F4): F4 => r4(mulV(a));
function f4inv(a: F4): F4 {
  // (x0 + x1 v)^-1 = (x0 - x1 v) / (x0^2 - u x1^2)
  const x0: Fp2 = [a[0] as bigint, a[1] as bigint];
  const x1: Fp2 = [a[2] as bigint, a[3] as bigint];
  const x0s = f2mul(x0, x0);
  const x1s = f2mul(x1, x1);
  const d: Fp2 = [md(x0s[0] + 2n * x1s[1]), md(x0s[1] - x1s[0])];
  const di = f2inv(d);
  const r0 = f2mul(x0, di);
  const r1 = f2mul(x1, di);
  return [r0[0], r0[1], md(-r1[0]), md(-r1[1])];
}

export function fp12inv(a: Fp12): Fp12 {
  const A0 = a4(a, 0);
  const A1 = a4(a, 1);
  const A2 = a4(a, 2);
  const t0 = f4sub(f4mul(A0, A0), f4mulV(f4mul(A1, A2)));
  const t1 = f4sub(f4mulV(f4mul(A2, A2)), f4mul(A0, A1));
  const t2 = f4sub(f4mul(A1, A1), f4mul(A0, A2));
  const norm = f4add(f4mul(A0, t0), f4mulV(f4add(f4mul(A2, t1), f4mul(A1, t2))));
  const ni = f4inv(norm);
  return pack(f4mul(t0, ni), f4mul(t1, ni), f4mul(t2, ni));
}

/** f^(p^6): w^(p^6) = -w, so odd powers of w change sign. The inverse of f in the cyclotomic subgroup. */
export function fp12conj(a: Fp12): Fp12 {
  const r = a.slice();
  for (const k of [1, 3, 5]) {
    r[2 * k] = md(-(a[2 * k] as bigint));
    r[2 * k + 1] = md(-(a[2 * k + 1] as bigint));
  }
  return r;
}

const U: Fp2 = [0n, 1n];
/** FROB[j][k] = u^(k (p^j - 1) / 6), so that (c·w^k)^(p^j) = c^(p^j)·FROB[j][k]·w^k. */
const FROB: Fp2[][] = [1n, 2n, 3n].map((j) =>
  [0n, 1n, 2n, 3n, 4n, 5n].map((k) => f2pow(U, (k * (P ** j - 1n)) / 6n)),
);

/** f^(p^j) for j = 1, 2, 3. */
export function fp12frob(a: Fp12, j: 1 | 2 | 3): Fp12 {
  const consts = FROB[j - 1] as Fp2[];
  const out: Fp12 = new Array(12);
  for (let k = 0; k < 6; k++) {
    let c: Fp2 = [a[2 * k] as bigint, a[2 * k + 1] as bigint];
    if (j !== 2) c = f2conj(c);
    const r = f2mul(c, consts[k] as Fp2);
    out[2 * k] = r[0];
    out[2 * k + 1] = r[1];
  }
  return out;
}

/**
 * Unreduced Fp4 square of (a0 + a1 u) + (a2 + a3 u) v: X0^2 + u X1^2 + ((X0 + X1)^2 - X0^2 - X1^2) v,
 * six multiplications instead of a product's nine.
 */
function s4(a0: bigint, a1: bigint, a2: bigint, a3: bigint): [bigint, bigint, bigint, bigint] {
  const p = a0 * a1;
  const x0 = (a0 + a1) * (a0 - 2n * a1) + p; // X0^2 = x0 + x1 u
  const x1 = 2n * p;
  const q = a2 * a3;
  const y0 = (a2 + a3) * (a2 - 2n * a3) + q; // X1^2 = y0 + y1 u
  const y1 = 2n * q;
  const s0 = a0 + a2;
  const s1 = a1 + a3;
  const r = s0 * s1;
  const z0 = (s0 + s1) * (s0 - 2n * s1) + r; // (X0 + X1)^2
  const z1 = 2n * r;
  return [x0 - 2n * y1, x1 + y0, z0 - x0 - y0, z1 - x1 - y1];
}

/**
 * Squaring in the cyclotomic subgroup (after the easy part of the final exponentiation), Granger and
 * Scott 2010: with A_i in Fp4 and conj the Fp4/Fp2 conjugate,
 * C0 = 3A0^2 - 2conj(A0), C1 = 3v·A2^2 + 2conj(A1), C2 = 3A1^2 - 2conj(A2).
 */
export function fp12cycSqr(a: Fp12): Fp12 {
  const [a0, a1, b0, b1, c0, c1, a2, a3, b2, b3, c2, c3] = a as [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  // A0 = (a0 + a1 u) + (a2 + a3 u) v, A1 = (b..), A2 = (c..).
  const t0 = s4(a0, a1, a2, a3);
  const t1 = s4(b0, b1, b2, b3);
  const t2 = s4(c0, c1, c2, c3);
  // v·A2^2 = u·(t2[2] + t2[3] u) + (t2[0] + t2[1] u) v = (-2 t2[3] + t2[2] u) + (t2[0] + t2[1] u) v
  return [
    md(3n * t0[0] - 2n * a0),
    md(3n * t0[1] - 2n * a1),
    md(3n * -2n * t2[3] + 2n * b0),
    md(3n * t2[2] + 2n * b1),
    md(3n * t1[0] - 2n * c0),
    md(3n * t1[1] - 2n * c1),
    md(3n * t0[2] + 2n * a2),
    md(3n * t0[3] + 2n * a3),
    md(3n * t2[0] - 2n * b2),
    md(3n * t2[1] - 2n * b3),
    md(3n * t1[2] + 2n * c2),
    md(3n * t1[3] + 2n * c3),
  ];
}

/** Non-adjacent form of k > 0, most significant digit first (digits -1, 0, 1). */
export function naf(k: bigint): Int8Array {
  const out: number[] = [];
  for (let x = k; x > 0n; x >>= 1n) {
    if (x & 1n) {
      const d = 2 - Number(x & 3n);
      out.push(d);
      x -= BigInt(d);
    } else out.push(0);
  }
  return Int8Array.from(out.reverse());
}

/**
 * f^e for f in the cyclotomic subgroup, e > 0, by signed square-and-multiply (public exponents):
 * there the inverse is the conjugate, so NAF digits cost nothing extra.
 */
export function fp12cycPow(a: Fp12, e: bigint, digits: Int8Array = naf(e)): Fp12 {
  const inv = fp12conj(a);
  let r = fp12One();
  for (const d of digits) {
    r = fp12cycSqr(r);
    if (d === 1) r = fp12mul(r, a);
    else if (d === -1) r = fp12mul(r, inv);
  }
  return r;
}

/** Generic f^e (any f), for tests and the rare non-cyclotomic use. */
export function fp12pow(a: Fp12, e: bigint): Fp12 {
  let r = fp12One();
  const bits = e.toString(2);
  for (let i = 0; i < bits.length; i++) {
    r = fp12sqr(r);
    if (bits[i] === '1') r = fp12mul(r, a);
  }
  return r;
}
