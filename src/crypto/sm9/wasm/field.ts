import { fpInv, P } from '../fp2.js';
import type { Fp12 } from '../fp12.js';
import { SM9_WASM_BASE64, SM9_WASM_LAYOUT } from './field.generated.js';

/**
 * The SM9 field module (scripts/gen-sm9-wasm.ts): Montgomery arithmetic over the BN prime (values
 * stored as 8 x 32-bit words, products on nine 29-bit limbs with i64 sums, R = 2^261), and the
 * Fp2/Fp4/Fp12 tower on top, all on byte offsets into its
 * memory. Values stay there in Montgomery form across a whole pairing or exponentiation; bigints
 * are converted only at the edges (toMont/fromMont below).
 *
 * Our own code rather than a library: mcl-wasm, the maintained wasm pairing package, offers its
 * BN254/BN381/BN462/BLS12 curves only, not the SM9 prime and tower (u^2 = -2, v^2 = u, w^3 = v).
 */

type Op1 = (r: number, a: number) => void;
type Op2 = (r: number, a: number, b: number) => void;

export interface Sm9Field {
  readonly memory: { readonly buffer: ArrayBuffer };
  readonly fp_mul: Op2;
  readonly fp_add: Op2;
  readonly fp_sub: Op2;
  readonly fp_neg: Op1;
  readonly fp_copy: Op1;
  readonly f2_mul: Op2;
  readonly f2_sqr: Op1;
  readonly f2_add: Op2;
  readonly f2_sub: Op2;
  readonly f2_neg: Op1;
  readonly f2_mulU: Op1;
  readonly f2_mulFp: Op2;
  readonly f2_copy: Op1;
  readonly f4_mul: Op2;
  readonly f4_sqr: Op1;
  readonly f4_add: Op2;
  readonly f4_sub: Op2;
  readonly f4_mulV: Op1;
  readonly f4_mulF2: Op2;
  readonly f12_mul: Op2;
  readonly f12_sqr: Op1;
  readonly f12_cycSqr: Op1;
  readonly f12_cSqr: Op1;
  readonly f12_conj: Op1;
  readonly f12_frob1: Op1;
  readonly f12_frob2: Op1;
  readonly f12_frob3: Op1;
  readonly f12_copy: Op1;
  readonly f12_mulLineAt: (r: number, f: number, line: number, x: number, y: number) => void;
}

export const LAYOUT = SM9_WASM_LAYOUT;
export const FP12_BYTES = 384;

/**
 * Fp12 slots in the module's heap: 0..21 belong to the pairing, 24..26 to GtTableWasm, 27..30 to
 * the inversions (inverse.ts); 22..25 are free for tests.
 */
export const slot = (i: number): number => LAYOUT.heap + FP12_BYTES * i;

// The module's Montgomery radix: 2^261, nine 29-bit limbs inside fp_mul (see the generator).
const R = (1n << 261n) % P;
const R_INV = fpInv(R);

/** 1 in Fp (Montgomery form), for the decompression. */
export const FP_ONE = LAYOUT.frob + 3 * 384;

/** True where this process can run WebAssembly (not under `node --jitless`). */
export const wasmAvailable = (): boolean => wasmApi !== undefined;

// The lib this project compiles against (ES2023, no DOM) does not declare WebAssembly.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

let field: Sm9Field | undefined;
let u32: Uint32Array;

/** The instance, compiled on first use (about a millisecond; synchronous: 11 KB of code). */
export function sm9Field(): Sm9Field {
  if (field) return field;
  const bytes = Buffer.from(SM9_WASM_BASE64, 'base64');
  if (!wasmApi) throw new Error('SM9 wasm field: this process has no WebAssembly');
  const instance = new wasmApi.Instance(new wasmApi.Module(bytes), {});
  const f = instance.exports as unknown as Sm9Field;
  u32 = new Uint32Array(f.memory.buffer);
  field = f;
  writeFrobenius();
  writeFp(FP_ONE, 1n);
  return f;
}

/** x (any integer) in Fp, Montgomery form, as 8 little-endian words into `into` from word `at`. */
export function fpToWords(x: bigint, into: Uint32Array, at: number): void {
  let m = ((((x % P) + P) % P) * R) % P;
  for (let j = 0; j < 8; j++) {
    into[at + j] = Number(m & 0xffffffffn);
    m >>= 32n;
  }
}

/** True when the Fp2 at byte offset off is 0 (values are kept fully reduced). */
export function f2IsZero(off: number): boolean {
  const base = off >> 2;
  for (let j = 0; j < 16; j++) if (u32[base + j] !== 0) return false;
  return true;
}

/** x into Fp, Montgomery form, at byte offset off of the module's memory. */
export function writeFp(off: number, x: bigint): void {
  fpToWords(x, u32, off >> 2);
}

export function readFp(off: number): bigint {
  const base = off >> 2;
  let m = 0n;
  for (let j = 7; j >= 0; j--) m = (m << 32n) | BigInt(u32[base + j] as number);
  return (m * R_INV) % P;
}

/** Byte offset of the coefficient of w^k inside an Fp12 (A_i = c_i + c_{i+3} v, 128 bytes each). */
const coeff = (k: number): number => (k < 3 ? 128 * k : 128 * (k - 3) + 64);

/** The bigint Fp12 of src/crypto/sm9/fp12.ts (c0..c5 as [re, u]) into the module's layout. */
export function writeFp12(off: number, f: readonly bigint[]): void {
  for (let k = 0; k < 6; k++) {
    writeFp(off + coeff(k), f[2 * k] as bigint);
    writeFp(off + coeff(k) + 32, f[2 * k + 1] as bigint);
  }
}

export function readFp12(off: number): Fp12 {
  const out: Fp12 = new Array(12);
  for (let k = 0; k < 6; k++) {
    out[2 * k] = readFp(off + coeff(k));
    out[2 * k + 1] = readFp(off + coeff(k) + 32);
  }
  return out;
}

export function writeFp12One(off: number): void {
  u32.fill(0, off >> 2, (off + FP12_BYTES) >> 2);
  writeFp(off, 1n);
}

/** Copies Fp12 values (Montgomery form) between the module and a JS-held table. */
export function saveFp12(off: number, into: Uint32Array, at: number): void {
  into.set(u32.subarray(off >> 2, (off + FP12_BYTES) >> 2), at);
}

export function loadFp12(off: number, from: Uint32Array, at: number): void {
  u32.set(from.subarray(at, at + FP12_BYTES / 4), off >> 2);
}

/** Copies words (a prepared point's lines) into the module at byte offset off. */
export function loadWords(off: number, words: Uint32Array): void {
  u32.set(words, off >> 2);
}

/** u^(k (p^j - 1) / 6) for j = 1..3, k = 0..5, where f12_frob{j} expects them. */
function writeFrobenius(): void {
  const pow = (b: [bigint, bigint], e: bigint): [bigint, bigint] => {
    let r: [bigint, bigint] = [1n, 0n];
    let x = b;
    const mul = (a: [bigint, bigint], c: [bigint, bigint]): [bigint, bigint] => [
      (a[0] * c[0] - 2n * a[1] * c[1]) % P,
      (a[0] * c[1] + a[1] * c[0]) % P,
    ];
    for (let k = e; k > 0n; k >>= 1n) {
      if (k & 1n) r = mul(r, x);
      x = mul(x, x);
    }
    return r;
  };
  for (let j = 1; j <= 3; j++)
    for (let k = 0; k < 6; k++) {
      const c = pow([0n, 1n], (BigInt(k) * (P ** BigInt(j) - 1n)) / 6n);
      const off = LAYOUT.frob + (j - 1) * FP12_BYTES + 64 * k;
      writeFp(off, c[0]);
      writeFp(off + 32, c[1]);
    }
}
