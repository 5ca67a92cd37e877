import { N } from '../../../src/crypto/sm9/fp2.js';
import { type Fp12, fp12conj, fp12cycSqr, fp12mul, fp12One } from './fp12.js';

/**
 * Fixed-base exponentiation with signed digits: e = sum d_i 2^(w·i) with |d_i| <= 2^(w-1), and a
 * table of base^(j·2^(w·i)) for j = 1..2^(w-1). Negative digits use the inverse, which is free in
 * both groups used here (conjugation in GT, negation in G2): ceil(257/w) multiplications, no squarings.
 * GT uses w = 6 (1,376 entries, ~0.8 MB per base: worth it, g is used by every sign and verify),
 * G2 uses w = 4.
 */

/** Signed base-2^w digits of e (0 <= e < N), least significant first. */
export function signedDigits(e: bigint, w = 4): Int8Array {
  const windows = Math.ceil(257 / w);
  const radix = 1 << w;
  const half = radix >> 1;
  const mask = BigInt(radix - 1);
  const out = new Int8Array(windows);
  let x = e;
  let carry = 0;
  for (let i = 0; i < windows; i++) {
    let d = Number(x & mask) + carry;
    x >>= BigInt(w);
    carry = 0;
    if (d >= half) {
      d -= radix;
      carry = 1;
    }
    out[i] = d;
  }
  return out;
}

/** base^e for a fixed base in GT (the cyclotomic subgroup). */
const GT_W = 6;

export class GtTable {
  private readonly table: Fp12[][] = [];

  constructor(base: Fp12) {
    let b = base;
    const windows = Math.ceil(257 / GT_W);
    for (let i = 0; i < windows; i++) {
      const row: Fp12[] = [b];
      for (let j = 2; j <= 1 << (GT_W - 1); j++) row.push(fp12mul(row[j - 2] as Fp12, b));
      this.table.push(row);
      for (let k = 0; k < GT_W; k++) b = fp12cycSqr(b);
    }
  }

  pow(e: bigint): Fp12 {
    const digits = signedDigits(((e % N) + N) % N, GT_W);
    let r: Fp12 | null = null;
    for (let i = 0; i < digits.length; i++) {
      const d = digits[i] as number;
      if (d === 0) continue;
      const row = this.table[i] as Fp12[];
      const t = d > 0 ? (row[d - 1] as Fp12) : fp12conj(row[-d - 1] as Fp12);
      r = r ? fp12mul(r, t) : t;
    }
    return r ?? fp12One();
  }
}
