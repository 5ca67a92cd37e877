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

  constructor(
    base: Fp12,
    private readonly w: number,
    private readonly digitsOf: (e: bigint, w: number) => Int8Array,
  ) {
    const F = sm9Field();
    const windows = Math.ceil(257 / w);
    this.per = 1 << (w - 1);
    this.words = new Uint32Array(windows * this.per * WORDS);
    writeFp12(B, base);
    for (let i = 0; i < windows; i++) {
      F.f12_copy(T, B);
      saveFp12(T, this.words, i * this.per * WORDS);
      for (let j = 1; j < this.per; j++) {
        F.f12_mul(T, T, B);
        saveFp12(T, this.words, (i * this.per + j) * WORDS);
      }
      for (let k = 0; k < w; k++) F.f12_cycSqr(B, B);
    }
  }

  pow(e: bigint): Fp12 {
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
