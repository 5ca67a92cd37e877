import {
  F2_ONE,
  type Fp2,
  f2add,
  f2conj,
  f2dbl,
  f2inv,
  f2mul,
  f2mulFp,
  f2mulU,
  f2pow,
  f2sqr,
  f2sub,
  md,
  P,
} from './fp2.js';

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
  // Chung–Hasan SQR2: C0 = A0^2 + v·2A1A2, C1 = 2A0A1 + v·A2^2, C2 = A1^2 + 2A0A2, with
  // A_i = (a[2i], a[2i+1], a[2i+6], a[2i+7]); doubling A0 and A2 first (shifts) saves the additions.
  const [x0, x1, y0, y1, z0, z1, x2, x3, y2, y3, z2, z3] = a as B12;
  const d0 = x0 << 1n;
  const d1 = x1 << 1n;
  const d2 = x2 << 1n;
  const d3 = x3 << 1n;
  const q0 = s4(x0, x1, x2, x3);
  const q1 = m4(d0, d1, d2, d3, y0, y1, y2, y3);
  const q2 = s4(y0, y1, y2, y3);
  const q3 = m4(y0, y1, y2, y3, z0 << 1n, z1 << 1n, z2 << 1n, z3 << 1n);
  const q4 = s4(z0, z1, z2, z3);
  const q5 = m4(d0, d1, d2, d3, z0, z1, z2, z3);
  // v·(t0, t1, t2, t3) = (-2 t3, t2, t0, t1)
  return [
    md(q0[0] - (q3[3] << 1n)),
    md(q0[1] + q3[2]),
    md(q1[0] - (q4[3] << 1n)),
    md(q1[1] + q4[2]),
    md(q2[0] + q5[0]),
    md(q2[1] + q5[1]),
    md(q0[2] + q3[0]),
    md(q0[3] + q3[1]),
    md(q1[2] + q4[0]),
    md(q1[3] + q4[1]),
    md(q2[2] + q5[2]),
    md(q2[3] + q5[3]),
  ];
}

/**
 * f times a line l0 + l2·w^2 + l3·w^3 (l0, l2, l3 in Fp2), the sparse shape every Miller-loop line
 * has here: L0 = l0 + l3·v, L2 = l2.
 */
export function fp12mulLine(f: Fp12, l0: Fp2, l2: Fp2, l3: Fp2): Fp12 {
  // C0 = A0·L0 + v·A1·l2, C1 = A1·L0 + v·A2·l2, C2 = A2·L0 + A0·l2, scalars as in fp12sqr.
  const [x0, x1, y0, y1, z0, z1, x2, x3, y2, y3, z2, z3] = f as B12;
  const [p0, p1] = l0;
  const [q0, q1] = l3;
  const [p, q] = l2;
  const a = m4(x0, x1, x2, x3, p0, p1, q0, q1);
  const b = m4(y0, y1, y2, y3, p0, p1, q0, q1);
  const c = m4(z0, z1, z2, z3, p0, p1, q0, q1);
  // X·l2 for X = (t0 + t1 u) + (t2 + t3 u) v, schoolbook (u^2 = -2); v·(s0, s1, s2, s3) = (-2 s3, s2, s0, s1).
  return [
    md(a[0] - ((y2 * q + y3 * p) << 1n)),
    md(a[1] + y2 * p - ((y3 * q) << 1n)),
    md(b[0] - ((z2 * q + z3 * p) << 1n)),
    md(b[1] + z2 * p - ((z3 * q) << 1n)),
    md(c[0] + x0 * p - ((x1 * q) << 1n)),
    md(c[1] + x0 * q + x1 * p),
    md(a[2] + y0 * p - ((y1 * q) << 1n)),
    md(a[3] + y0 * q + y1 * p),
    md(b[2] + z0 * p - ((z1 * q) << 1n)),
    md(b[3] + z0 * q + z1 * p),
    md(c[2] + x2 * p - ((x3 * q) << 1n)),
    md(c[3] + x2 * q + x3 * p),
  ];
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
 * Unreduced Fp4 square of (a0 + a1 u) + (a2 + a3 u) v, as a cubic in v modulo v^4 + 2 (u = v^2)
 * with the symmetric products shared: 10 multiplications and 11 other operations, against
 * Karatsuba's 6 and 24. A 256-bit bigint product costs about three additions (all allocate), so
 * this is a little cheaper (Granger–Scott squarings 4-10% in same-run ratios) and simpler.
 */
function s4(a0: bigint, a1: bigint, a2: bigint, a3: bigint): [bigint, bigint, bigint, bigint] {
  const d0 = a0 << 1n;
  const d2 = a2 << 1n;
  return [
    a0 * a0 - ((a1 * a1 + d2 * a3) << 1n),
    d0 * a1 + a2 * a2 - ((a3 * a3) << 1n),
    d0 * a2 - ((a1 * a3) << 2n),
    d0 * a3 + d2 * a1,
  ];
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
 * Karabina's compressed squaring (Aranha et al. 2011, "Faster explicit formulas for computing
 * pairings over ordinary curves", section 5): in the cyclotomic subgroup C1 and C2 of the
 * Granger–Scott square depend on A1 and A2 only, so a run of squarings can carry just
 * (c1, c4, c2, c5) = A1, A2 and skip A0's third of the work; `decompress` recovers A0 at the end.
 */
export type Compressed = [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];

function compressedSqr(g: Compressed): Compressed {
  const [b0, b1, c0, c1, b2, b3, c2, c3] = g;
  const t1 = s4(b0, b1, b2, b3);
  const t2 = s4(c0, c1, c2, c3);
  return [
    md(-6n * t2[3] + 2n * b0),
    md(3n * t2[2] + 2n * b1),
    md(3n * t1[0] - 2n * c0),
    md(3n * t1[1] - 2n * c1),
    md(3n * t2[0] - 2n * b2),
    md(3n * t2[1] - 2n * b3),
    md(3n * t1[2] + 2n * c2),
    md(3n * t1[3] + 2n * c3),
  ];
}

/**
 * The full element from (g2, g3, g4, g5) = (c1, c4, c2, c5), ξ = u: g1 = (ξ g5^2 + 3 g4^2 - 2 g3) /
 * (4 g2) and g0 = ξ (2 g1^2 + g2 g5 - 3 g3 g4) + 1. Null when g2 = 0 (1 is such a value, others
 * are rare): the caller then squares the long way, so no second formula needs its own proof.
 */
export function decompress(g: Compressed): Fp12 | null {
  const g2: Fp2 = [g[0], g[1]];
  const g4: Fp2 = [g[2], g[3]];
  const g3: Fp2 = [g[4], g[5]];
  const g5: Fp2 = [g[6], g[7]];
  if (g2[0] === 0n && g2[1] === 0n) return null;
  const n = f2sub(f2add(f2mulU(f2sqr(g5)), f2mulFp(f2sqr(g4), 3n)), f2dbl(g3));
  const g1 = f2mul(n, f2inv(f2mulFp(g2, 4n)));
  const t = f2sub(f2add(f2dbl(f2sqr(g1)), f2mul(g2, g5)), f2mulFp(f2mul(g3, g4), 3n));
  const g0 = f2add(f2mulU(t), F2_ONE);
  return [g0[0], g0[1], g2[0], g2[1], g4[0], g4[1], g1[0], g1[1], g3[0], g3[1], g5[0], g5[1]];
}

/** Squarings of longer runs than this go compressed: decompressing costs an Fp inversion. */
export const COMPRESS_RUN = 16;

/** a^(2^n) in the cyclotomic subgroup. */
export function fp12cycSqrN(a: Fp12, n: number): Fp12 {
  if (n > COMPRESS_RUN) {
    let g: Compressed = [a[2], a[3], a[4], a[5], a[8], a[9], a[10], a[11]] as Compressed;
    for (let i = 0; i < n; i++) g = compressedSqr(g);
    const r = decompress(g);
    if (r) return r;
  }
  let r = a;
  for (let i = 0; i < n; i++) r = fp12cycSqr(r);
  return r;
}

/**
 * f^e for f in the cyclotomic subgroup, e > 0, by signed square-and-multiply (public exponents):
 * there the inverse is the conjugate, so NAF digits cost nothing extra. Squarings between two
 * multiplications are done as one run (compressed when long: t has a run of 37 zero digits).
 */
export function fp12cycPow(a: Fp12, e: bigint, digits: Int8Array = naf(e)): Fp12 {
  const inv = fp12conj(a);
  let r: Fp12 | null = null;
  let run = 0;
  for (const d of digits) {
    if (r) run++;
    if (d === 0) continue;
    const x = d === 1 ? a : inv;
    r = r ? fp12mul(fp12cycSqrN(r, run), x) : x;
    run = 0;
  }
  if (!r) return fp12One();
  return fp12cycSqrN(r, run);
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
