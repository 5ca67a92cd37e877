/**
 * GHASH (NIST SP 800-38D) with Shoup's 8-bit tables on 32-bit words: a 256-entry table of b·H per
 * key (4 KiB) and one look-up per byte, plus a fixed table for the 8 bits shifted out per step.
 * Kept separate from the cipher so it can be tested and timed alone.
 */

/** REM8[r]: the reduction of the byte r shifted out of the low end, as the top word's xor mask. */
const REM8 = (() => {
  const t = new Int32Array(256);
  for (let r = 0; r < 256; r++) {
    // Shift a 128-bit value whose low byte is r right by 8, one bit at a time, reducing with
    // 0xE1 || 0^120 (GCM's polynomial, bit-reflected): only the top word picks up bits.
    let top = 0;
    let low = r;
    for (let i = 0; i < 8; i++) {
      const bit = low & 1;
      low >>>= 1;
      top = (top >>> 1) ^ (bit ? 0xe1000000 | 0 : 0);
    }
    t[r] = top;
  }
  return t;
})();

export class Ghash {
  /** table[b*4 .. b*4+3]: b·H as four big-endian 32-bit words. */
  private readonly table = new Int32Array(1024);
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
    t.set([v0, v1, v2, v3], 128 * 4);
    for (let i = 64; i > 0; i >>= 1) {
      const carry = v3 & 1 ? 0xe1000000 | 0 : 0;
      v3 = (v3 >>> 1) | (v2 << 31);
      v2 = (v2 >>> 1) | (v1 << 31);
      v1 = (v1 >>> 1) | (v0 << 31);
      v0 = (v0 >>> 1) ^ carry;
      t.set([v0, v1, v2, v3], i * 4);
    }
    for (let i = 2; i <= 128; i *= 2)
      for (let j = 1; j < i; j++)
        for (let k = 0; k < 4; k++) t[(i + j) * 4 + k] = (t[i * 4 + k] as number) ^ (t[j * 4 + k] as number);
  }

  /** Absorbs data zero-padded to whole 16-byte blocks. */
  update(data: Uint8Array): this {
    const full = data.length - (data.length % 16);
    for (let off = 0; off < full; off += 16) this.block(data, off);
    if (full < data.length) {
      const block = new Uint8Array(16);
      block.set(data.subarray(full));
      this.block(block, 0);
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

  /** Z = (Z xor X)·H for the block at d[off..off+16]; no allocation (it runs once per 16 bytes). */
  private block(d: Uint8Array, off: number): void {
    const x0 =
      this.z0 ^
      (((d[off] as number) << 24) |
        ((d[off + 1] as number) << 16) |
        ((d[off + 2] as number) << 8) |
        (d[off + 3] as number));
    const x1 =
      this.z1 ^
      (((d[off + 4] as number) << 24) |
        ((d[off + 5] as number) << 16) |
        ((d[off + 6] as number) << 8) |
        (d[off + 7] as number));
    const x2 =
      this.z2 ^
      (((d[off + 8] as number) << 24) |
        ((d[off + 9] as number) << 16) |
        ((d[off + 10] as number) << 8) |
        (d[off + 11] as number));
    const x3 =
      this.z3 ^
      (((d[off + 12] as number) << 24) |
        ((d[off + 13] as number) << 16) |
        ((d[off + 14] as number) << 8) |
        (d[off + 15] as number));
    const t = this.table;
    let k = (x3 & 0xff) * 4;
    let z0 = t[k] as number;
    let z1 = t[k + 1] as number;
    let z2 = t[k + 2] as number;
    let z3 = t[k + 3] as number;
    for (let i = 14; i >= 0; i--) {
      const word = i < 4 ? x0 : i < 8 ? x1 : i < 12 ? x2 : x3;
      const rem = z3 & 0xff;
      z3 = (z3 >>> 8) | (z2 << 24);
      z2 = (z2 >>> 8) | (z1 << 24);
      z1 = (z1 >>> 8) | (z0 << 24);
      z0 = (z0 >>> 8) ^ (REM8[rem] as number);
      k = ((word >>> ((3 - (i & 3)) * 8)) & 0xff) * 4;
      z0 ^= t[k] as number;
      z1 ^= t[k + 1] as number;
      z2 ^= t[k + 2] as number;
      z3 ^= t[k + 3] as number;
    }
    this.z0 = z0;
    this.z1 = z1;
    this.z2 = z2;
    this.z3 = z3;
  }
}
