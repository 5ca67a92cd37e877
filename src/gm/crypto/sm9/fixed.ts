import { N } from './fp2.js';
import { type Fp12, fp12conj, fp12cycSqr, fp12mul, fp12One } from './fp12.js';
import { G2_INF, type G2Affine, type G2Jac, g2add, g2dbl, g2fromAffine, g2neg, g2toAffine } from './g2.js';

/**
 * Fixed-base exponentiation with signed base-16 digits: e = sum d_i 16^i with d_i in [-8, 7], and a
 * table of base^(j·16^i) for j = 1..8. Negative digits use the inverse, which is free in both groups
 * used here (conjugation in GT, negation in G2). 65 multiplications and no squarings per use.
 */

const WINDOWS = 65;

/** Signed base-16 digits of e (0 <= e < N), least significant first. */
export function signedDigits(e: bigint): Int8Array {
  const out = new Int8Array(WINDOWS);
  let x = e;
  let carry = 0;
  for (let i = 0; i < WINDOWS; i++) {
    let d = Number(x & 15n) + carry;
    x >>= 4n;
    carry = 0;
    if (d > 7) {
      d -= 16;
      carry = 1;
    }
    out[i] = d;
  }
  return out;
}

/** base^e for a fixed base in GT (the cyclotomic subgroup). */
export class GtTable {
  private readonly table: Fp12[][] = [];

  constructor(base: Fp12) {
    let b = base;
    for (let i = 0; i < WINDOWS; i++) {
      const row: Fp12[] = [b];
      for (let j = 2; j <= 8; j++) row.push(fp12mul(row[j - 2] as Fp12, b));
      this.table.push(row);
      b = fp12cycSqr(fp12cycSqr(fp12cycSqr(fp12cycSqr(b))));
    }
  }

  pow(e: bigint): Fp12 {
    const digits = signedDigits(((e % N) + N) % N);
    let r: Fp12 | null = null;
    for (let i = 0; i < WINDOWS; i++) {
      const d = digits[i] as number;
      if (d === 0) continue;
      const row = this.table[i] as Fp12[];
      const t = d > 0 ? (row[d - 1] as Fp12) : fp12conj(row[-d - 1] as Fp12);
      r = r ? fp12mul(r, t) : t;
    }
    return r ?? fp12One();
  }
}

/** [e]base for a fixed G2 base (P2). */
export class G2Table {
  private readonly table: G2Jac[][] = [];

  constructor(base: G2Affine) {
    let b = g2fromAffine(base);
    for (let i = 0; i < WINDOWS; i++) {
      const row: G2Jac[] = [b];
      for (let j = 2; j <= 8; j++) row.push(g2add(row[j - 2] as G2Jac, b));
      // Affine entries make every later addition a cheaper one (Z = 1).
      this.table.push(row.map((p) => g2fromAffine(g2toAffine(p) as G2Affine)));
      b = g2dbl(g2dbl(g2dbl(g2dbl(b))));
    }
  }

  mul(e: bigint): G2Jac {
    const digits = signedDigits(((e % N) + N) % N);
    let r = G2_INF;
    for (let i = 0; i < WINDOWS; i++) {
      const d = digits[i] as number;
      if (d === 0) continue;
      const row = this.table[i] as G2Jac[];
      r = g2add(r, d > 0 ? (row[d - 1] as G2Jac) : g2neg(row[-d - 1] as G2Jac));
    }
    return r;
  }
}
