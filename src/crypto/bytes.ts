import { KapokError } from '../core/errors.js';

/** Byte and integer helpers shared by the GM algorithms. Errors name the input, never its value. */

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Parses hex (an optional 0x prefix and whitespace allowed); `what` names the input in errors. */
export function fromHex(hex: string, what: string, length?: number): Uint8Array {
  const clean = hex.trim().replace(/^0x/i, '').replace(/\s+/g, '');
  if (!HEX.test(clean))
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `${what}: expected hex (an even number of 0-9a-f digits), found ${clean.length % 2 ? 'an odd number of digits' : 'a non-hex character'}`,
    );
  const out = Uint8Array.from(Buffer.from(clean, 'hex'));
  if (length !== undefined && out.length !== length)
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `${what}: expected ${length} bytes (${length * 2} hex digits), found ${out.length}`,
    );
  return out;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Big-endian unsigned integer of the bytes. */
export function bytesToBigint(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${toHex(b)}`);
}

/** Big-endian, left-padded to `len` bytes; throws if it does not fit. */
export function bigintToBytes(n: bigint, len: number): Uint8Array {
  if (n < 0n) throw new RangeError('negative integer');
  const hex = n.toString(16).padStart(len * 2, '0');
  if (hex.length > len * 2) throw new RangeError(`integer does not fit in ${len} bytes`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** UTF-8 for strings, the bytes themselves otherwise. */
export function asBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

export function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** Modular inverse by the extended Euclidean algorithm (m prime, a not 0 mod m). */
export function invMod(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('not invertible');
  return mod(s0, m);
}

/** Uniform random integer in [1, n-1] by rejection sampling (never biased by a modulo). */
export function randomScalar(n: bigint, random: (len: number) => Uint8Array): bigint {
  const len = Math.ceil(n.toString(16).length / 2);
  const bits = n.toString(2).length;
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const k = bytesToBigint(random(len)) & mask;
    if (k >= 1n && k < n) return k;
  }
}
