import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { KapokError } from '../core/errors.js';
import { asBytes } from './bytes.js';

/** SM3 (GB/T 32905), HMAC-SM3, PBKDF2-HMAC-SM3 and the SM3 key derivation function, on Node's OpenSSL. */

export const SM3_DIGEST_BYTES = 32;

export function sm3(...parts: Array<string | Uint8Array>): Uint8Array {
  const h = createHash('sm3');
  for (const p of parts) h.update(asBytes(p));
  return new Uint8Array(h.digest());
}

export function hmacSm3(key: Uint8Array, data: string | Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sm3', key).update(asBytes(data)).digest());
}

export function pbkdf2Sm3(
  password: string | Uint8Array,
  salt: string | Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 1)
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `pbkdf2 iterations: expected an integer >= 1, found ${iterations}`,
    );
  if (!Number.isInteger(length) || length < 1 || length > 1024)
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `pbkdf2 length: expected 1..1024 bytes, found ${length}`);
  return new Uint8Array(pbkdf2Sync(asBytes(password), asBytes(salt), iterations, length, 'sm3'));
}

/**
 * The KDF of GM/T 0003.4 and 0044: SM3(Z || ct) for a 32-bit big-endian counter ct = 1, 2, ...,
 * concatenated and cut to `length` bytes. Used by SM2 encryption and the SM9 KEM.
 */
export function sm3Kdf(z: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 1 << 20)
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `kdf length: expected 1..1048576 bytes, found ${length}`);
  const out = new Uint8Array(Math.ceil(length / SM3_DIGEST_BYTES) * SM3_DIGEST_BYTES);
  const ct = new Uint8Array(4);
  const view = new DataView(ct.buffer);
  for (let i = 0; i * SM3_DIGEST_BYTES < length; i++) {
    view.setUint32(0, i + 1);
    out.set(createHash('sm3').update(z).update(ct).digest(), i * SM3_DIGEST_BYTES);
  }
  return out.subarray(0, length);
}
