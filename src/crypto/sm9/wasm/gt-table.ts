import { N } from '../fp2.js';
import { type Fp12, fp12One } from '../fp12.js';
import { FP12_BYTES, loadFp12, readFp12, saveFp12, slot, sm9Field, writeFp12 } from './field.js';

const R = slot(24);
const T = slot(25);
const B = slot(26);
const WORDS = FP12_BYTES / 4;

/**
 * The fixed-base GT table of ../fixed.ts (signed base-2^w digits, row i holds base^(j·2^(w·i)))
 * with its entries in Montgomery words on the JS heap (~0.9 MB at w = 7): each product loads one
 * entry into the module, so tables need no memory management inside it.
 */
export class GtTableWasm {
  private readonly words: Uint32Array;
  private readonly per: number;
  private readonly windows: number;
  /** Rows built so far, and base^(2^(w·row)) for the next one (kept on the JS heap between fills). */
  private row = 0;
  private readonly next = new Uint32Array(WORDS);

  /** `lazy`: no rows yet; fill() builds them a few at a time (a start does so after ready). */
  constructor(
    base: Fp12,
    private readonly w: number,
    private readonly digitsOf: (e: bigint, w: number) => Int8Array,
    lazy = false,
  ) {
    this.windows = Math.ceil(257 / w);
    this.per = 1 << (w - 1);
    this.words = new Uint32Array(this.windows * this.per * WORDS);
    writeFp12(B, base);
    saveFp12(B, this.next, 0);
    if (!lazy) this.fill(Number.POSITIVE_INFINITY);
  }

  /** Builds up to `rows` more rows (63 products and w squarings each); true once the table is whole. */
  fill(rows: number): boolean {
    if (this.row >= this.windows) return true;
    const F = sm9Field();
    // The module's slots are scratch shared by every operation: reload the next base each time.
    loadFp12(B, this.next, 0);
    for (let n = 0; n < rows && this.row < this.windows; n++, this.row++) {
      const i = this.row;
      F.f12_copy(T, B);
      saveFp12(T, this.words, i * this.per * WORDS);
      for (let j = 1; j < this.per; j++) {
        F.f12_mul(T, T, B);
        saveFp12(T, this.words, (i * this.per + j) * WORDS);
      }
      for (let k = 0; k < this.w; k++) F.f12_cycSqr(B, B);
    }
    saveFp12(B, this.next, 0);
    return this.row >= this.windows;
  }

  pow(e: bigint): Fp12 {
    if (this.row < this.windows) this.fill(Number.POSITIVE_INFINITY);
    const F = sm9Field();
    const digits = this.digitsOf(((e % N) + N) % N, this.w);
    let started = false;
    for (let i = 0; i < digits.length; i++) {
      const d = digits[i] as number;
      if (d === 0) continue;
      loadFp12(T, this.words, (i * this.per + Math.abs(d) - 1) * WORDS);
      if (d < 0) F.f12_conj(T, T);
      if (started) F.f12_mul(R, R, T);
      else F.f12_copy(R, T);
      started = true;
    }
    return started ? readFp12(R) : fp12One();
  }
}
