/** Bit-level helpers to build hand-made UPER encodings in tests. */
export const bin = (v: number, n: number) => v.toString(2).padStart(n, '0');

export function bitsOf(buf: Uint8Array): string {
  let s = '';
  for (const b of buf) s += bin(b, 8);
  return s;
}

/** '0'/'1' characters to bytes, zero-padded to a whole octet as UPER is. */
export function bufOf(bits: string): Uint8Array {
  const padded = bits + '0'.repeat((8 - (bits.length % 8)) % 8);
  const out = new Uint8Array(padded.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(padded.slice(i * 8, i * 8 + 8), 2);
  return out;
}
