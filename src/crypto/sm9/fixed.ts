import { F2_ONE, type Fp2, f2inv, f2mul, f2sqr, N } from './fp2.js';
import { type Fp12, fp12conj, fp12cycSqr, fp12mul, fp12One } from './fp12.js';
import { G2_INF, type G2Affine, type G2Jac, g2add, g2dbl, g2fromAffine, g2neg } from './g2.js';
import { wasmAvailable } from './wasm/field.js';
import { GtTableWasm } from './wasm/gt-table.js';

/**
 * Fixed-base exponentiation with signed digits: e = sum d_i 2^(w·i) with |d_i| <= 2^(w-1), and a
 * table of base^(j·2^(w·i)) for j = 1..2^(w-1). Negative digits use the inverse, which is free in
 * both groups used here (conjugation in GT, negation in G2): ceil(257/w) multiplications, no squarings.
 * GT uses w = 7 (2,368 entries, ~1.5 MB per base: g is used by every sign and verify, and 37
 * multiplications instead of w = 6's 43 took 11% off g^h), G2 uses w = 4.
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
const GT_W = 7;

export interface GtPow {
  pow(e: bigint): Fp12;
  /** Builds up to `rows` more rows; true once the table is whole (pow() builds what is left). */
  fill(rows: number): boolean;
}

/**
 * The table the keys use: on the wasm field (src/crypto/sm9/wasm/), or on bigints where this
 * process has no WebAssembly (`node --jitless`); both give the same values.
 */
export function gtTable(base: Fp12, lazy = false): GtPow {
  return wasmAvailable() ? new GtTableWasm(base, GT_W, signedDigits, lazy) : new GtTable(base, lazy);
}

export class GtTable implements GtPow {
  private readonly table: Fp12[][] = [];
  /** base^(2^(w·i)) for the next row i; null once every row is built. */
  private next: Fp12 | null;

  /** `lazy`: no rows yet; fill() builds them a few at a time, pow() builds what is left. */
  constructor(base: Fp12, lazy = false) {
    this.next = base;
    if (!lazy) this.fill(Number.POSITIVE_INFINITY);
  }

  /** Builds up to `rows` more rows (64 products and 7 squarings each); true once the table is whole. */
  fill(rows: number): boolean {
    const windows = Math.ceil(257 / GT_W);
    for (let n = 0; n < rows && this.next; n++) {
      const b = this.next;
      const row: Fp12[] = [b];
      for (let j = 2; j <= 1 << (GT_W - 1); j++) row.push(fp12mul(row[j - 2] as Fp12, b));
      this.table.push(row);
      if (this.table.length === windows) this.next = null;
      else {
        let c = b;
        for (let k = 0; k < GT_W; k++) c = fp12cycSqr(c);
        this.next = c;
      }
    }
    return this.next === null;
  }

  pow(e: bigint): Fp12 {
    if (this.next) this.fill(Number.POSITIVE_INFINITY);
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

/** [e]base for a fixed G2 base (P2). */
export class G2Table {
  private readonly table: G2Jac[][] = [];

  constructor(base: G2Affine) {
    let b = g2fromAffine(base);
    for (let i = 0; i < Math.ceil(257 / 4); i++) {
      const row: G2Jac[] = [b];
      for (let j = 2; j <= 8; j++) row.push(g2add(row[j - 2] as G2Jac, b));
      this.table.push(row);
      b = g2dbl(g2dbl(g2dbl(g2dbl(b))));
    }
    // Affine entries make every later addition a cheaper one (Z = 1). One inversion for all 520
    // (Montgomery's trick) instead of one each: the inversions were ~55% of building the table.
    const flat = this.table.flat();
    const zInv = f2batchInv(flat.map((p) => p.Z));
    let k = 0;
    for (const row of this.table)
      for (let j = 0; j < row.length; j++) {
        const p = row[j] as G2Jac;
        const zi = zInv[k++] as Fp2;
        const zi2 = f2sqr(zi);
        row[j] = { X: f2mul(p.X, zi2), Y: f2mul(p.Y, f2mul(zi2, zi)), Z: F2_ONE };
      }
  }

  mul(e: bigint): G2Jac {
    const digits = signedDigits(((e % N) + N) % N);
    let r = G2_INF;
    for (let i = 0; i < digits.length; i++) {
      const d = digits[i] as number;
      if (d === 0) continue;
      const row = this.table[i] as G2Jac[];
      r = g2add(r, d > 0 ? (row[d - 1] as G2Jac) : g2neg(row[-d - 1] as G2Jac));
    }
    return r;
  }
}

/** Inverses of non-zero Fp2 elements with one inversion and 3(n-1) products. */
function f2batchInv(xs: Fp2[]): Fp2[] {
  const prefix: Fp2[] = [];
  let acc = F2_ONE;
  for (const x of xs) {
    prefix.push(acc);
    acc = f2mul(acc, x);
  }
  let inv = f2inv(acc);
  const out: Fp2[] = new Array(xs.length);
  for (let i = xs.length - 1; i >= 0; i--) {
    out[i] = f2mul(inv, prefix[i] as Fp2);
    inv = f2mul(inv, xs[i] as Fp2);
  }
  return out;
}
