/**
 * GHASH (NIST SP 800-38D) with Shoup's 4-bit tables on 32-bit words: 16 table entries per key,
 * two table look-ups per byte. Kept separate from the cipher so it can be tested and timed alone.
 */

// Reduction constants for the 4 bits shifted out on each step (GCM's polynomial, bit-reflected).
const LAST4 = [
  0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0, 0xe100, 0xfd20, 0xd940, 0xc560, 0x9180,
  0x8da0, 0xa9c0, 0xb5e0,
];

export class Ghash {
  /** table[i*4 .. i*4+3]: i·H as four big-endian 32-bit words. */
  private readonly table = new Int32Array(64);
  private z0 = 0;
  private z1 = 0;
  private z2 = 0;
  private z3 = 0;

  constructor(h: Uint8Array) {
    const dv = new DataView(h.buffer, h.byteOffset, 16);
    let v0 = dv.getInt32(0);
    let v1 = dv.getInt32(4);
    let v2 = dv.getInt32(8);
    let v3 = dv.getInt32(12);
    const t = this.table;
    t.set([v0, v1, v2, v3], 32);
    for (let i = 4; i > 0; i >>= 1) {
      const carry = v3 & 1 ? 0xe1000000 | 0 : 0;
      v3 = (v3 >>> 1) | (v2 << 31);
      v2 = (v2 >>> 1) | (v1 << 31);
      v1 = (v1 >>> 1) | (v0 << 31);
      v0 = (v0 >>> 1) ^ carry;
      t.set([v0, v1, v2, v3], i * 4);
    }
    for (let i = 2; i <= 8; i *= 2)
      for (let j = 1; j < i; j++)
        for (let k = 0; k < 4; k++) t[(i + j) * 4 + k] = (t[i * 4 + k] as number) ^ (t[j * 4 + k] as number);
  }

  /** Absorbs data zero-padded to whole 16-byte blocks. */
  update(data: Uint8Array): this {
    const block = new Uint8Array(16);
    for (let off = 0; off < data.length; off += 16) {
      const end = Math.min(off + 16, data.length);
      if (end - off < 16) {
        block.fill(0);
        block.set(data.subarray(off, end));
        this.block(block, 0);
      } else this.block(data, off);
    }
    return this;
  }

  /** Absorbs the length block [len(A)]64 || [len(C)]64 in bits and returns the hash. */
  finish(aadBytes: number, dataBytes: number): Uint8Array {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, Math.floor(aadBytes / 0x20000000));
    dv.setUint32(4, (aadBytes * 8) >>> 0);
    dv.setUint32(8, Math.floor(dataBytes / 0x20000000));
    dv.setUint32(12, (dataBytes * 8) >>> 0);
    this.block(b, 0);
    const out = new Uint8Array(16);
    const ov = new DataView(out.buffer);
    ov.setInt32(0, this.z0);
    ov.setInt32(4, this.z1);
    ov.setInt32(8, this.z2);
    ov.setInt32(12, this.z3);
    return out;
  }

  /** Z = (Z xor X)·H for the block at data[off..off+16]; no allocation (it runs once per 16 bytes). */
  private block(d: Uint8Array, off: number): void {
    const w = (i: number) =>
      ((d[off + i] as number) << 24) |
      ((d[off + i + 1] as number) << 16) |
      ((d[off + i + 2] as number) << 8) |
      (d[off + i + 3] as number);
    const x0 = this.z0 ^ w(0);
    const x1 = this.z1 ^ w(4);
    const x2 = this.z2 ^ w(8);
    const x3 = this.z3 ^ w(12);
    const t = this.table;
    let z0 = 0;
    let z1 = 0;
    let z2 = 0;
    let z3 = 0;
    for (let i = 15; i >= 0; i--) {
      const word = i < 4 ? x0 : i < 8 ? x1 : i < 12 ? x2 : x3;
      const byte = (word >>> ((3 - (i & 3)) * 8)) & 0xff;
      for (let half = 0; half < 2; half++) {
        const nib = half === 0 ? byte & 0xf : byte >>> 4;
        if (i !== 15 || half === 1) {
          const rem = z3 & 0xf;
          z3 = (z3 >>> 4) | (z2 << 28);
          z2 = (z2 >>> 4) | (z1 << 28);
          z1 = (z1 >>> 4) | (z0 << 28);
          z0 = (z0 >>> 4) ^ ((LAST4[rem] as number) << 16);
        }
        const k = nib * 4;
        z0 ^= t[k] as number;
        z1 ^= t[k + 1] as number;
        z2 ^= t[k + 2] as number;
        z3 ^= t[k + 3] as number;
      }
    }
    this.z0 = z0;
    this.z1 = z1;
    this.z2 = z2;
    this.z3 = z3;
  }
}
