import { bigintToBytes, bytesToBigint } from '../bytes.js';
import { sm3 } from '../sm3.js';
import { N } from './fp2.js';
import type { Fp12 } from './fp12.js';

/**
 * H1/H2 of GM/T 0044: Ha = SM3(prefix || Z || 00000001) || SM3(prefix || Z || 00000002), its first
 * 40 bytes (hlen = 8·ceil(5·log2(N)/32) = 320 bits) as an integer h, and (h mod (N-1)) + 1.
 */
function hashToRange(prefix: number, z: Uint8Array): bigint {
  const pre = Uint8Array.of(prefix);
  const ha = new Uint8Array(64);
  ha.set(sm3(pre, z, Uint8Array.of(0, 0, 0, 1)), 0);
  ha.set(sm3(pre, z, Uint8Array.of(0, 0, 0, 2)), 32);
  return (bytesToBigint(ha.subarray(0, 40)) % (N - 1n)) + 1n;
}

/** H1(ID || hid). */
export function h1(id: Uint8Array, hid: number): bigint {
  const z = new Uint8Array(id.length + 1);
  z.set(id);
  z[id.length] = hid;
  return hashToRange(0x01, z);
}

/** H2(M || w). */
export function h2(message: Uint8Array, w: Uint8Array): bigint {
  const z = new Uint8Array(message.length + w.length);
  z.set(message);
  z.set(w, message.length);
  return hashToRange(0x02, z);
}

/**
 * GT element as 384 bytes the way the standard (and GmSSL, gmsm) write it: highest tower
 * coefficient first at every level, A2 A1 A0 in Fp12 = Fp4[w], then A_i1 A_i0 in Fp4 = Fp2[v], then
 * the u-part before the constant in Fp2. With A_i = c_i + c_{i+3}·v that is c5 c2 c4 c1 c3 c0.
 */
export function gtToBytes(f: Fp12): Uint8Array {
  const out = new Uint8Array(384);
  let off = 0;
  for (const k of [5, 2, 4, 1, 3, 0]) {
    out.set(bigintToBytes(f[2 * k + 1] as bigint, 32), off);
    out.set(bigintToBytes(f[2 * k] as bigint, 32), off + 32);
    off += 64;
  }
  return out;
}
