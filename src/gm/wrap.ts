import { randomBytes } from 'node:crypto';
import { KapokError } from '../core/errors.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { pbkdf2Sm3 } from '../crypto/sm3.js';
import { sm4GcmDecrypt, sm4GcmEncrypt } from '../crypto/sm4.js';
import { sm9Decapsulate, sm9Encapsulate } from '../crypto/sm9/kem.js';
import type { Sm9EncMasterPublicKey, Sm9EncUserKey } from '../crypto/sm9/keys.js';

/**
 * Wrapping a device's SM9 signing key for delivery. Both schemes seal it with SM4-GCM (the serial as
 * AAD); they differ in where the 16-byte wrapping key comes from:
 * - `sm9-kem+sm4-gcm`: SM9 key encapsulation to the serial's encryption identity (hid 0x03); the
 *   device holds that identity's key from manufacturing.
 * - `pbkdf2-sm3+sm4-gcm`: PBKDF2-HMAC-SM3(factory secret, "kapok-device-key:" + serial).
 */

export type WrappedKey =
  | { scheme: 'sm9-kem+sm4-gcm'; encapsulation: string; nonce: string; ciphertext: string; tag: string }
  | { scheme: 'pbkdf2-sm3+sm4-gcm'; iterations: number; nonce: string; ciphertext: string; tag: string };

const aad = (serial: string) => new TextEncoder().encode(serial);
export const pbkdf2Salt = (serial: string) => `kapok-device-key:${serial}`;

function seal(key: Uint8Array, serial: string, secret: Uint8Array) {
  const nonce = randomBytes(12);
  const { ciphertext, tag } = sm4GcmEncrypt(key, nonce, secret, aad(serial));
  return { nonce: toHex(nonce), ciphertext: toHex(ciphertext), tag: toHex(tag) };
}

export function wrapWithKem(master: Sm9EncMasterPublicKey, serial: string, secret: Uint8Array): WrappedKey {
  const { key, encapsulation } = sm9Encapsulate(master, serial, 16);
  return { scheme: 'sm9-kem+sm4-gcm', encapsulation: toHex(encapsulation), ...seal(key, serial, secret) };
}

export function wrapWithPbkdf2(
  factorySecret: string,
  iterations: number,
  serial: string,
  secret: Uint8Array,
): WrappedKey {
  const key = pbkdf2Sm3(factorySecret, pbkdf2Salt(serial), iterations, 16);
  return { scheme: 'pbkdf2-sm3+sm4-gcm', iterations, ...seal(key, serial, secret) };
}

/** Device side: recovers the signing key; needs the serial's SM9 encryption key or the factory secret. */
export function unwrapDeviceKey(
  wrapped: WrappedKey,
  serial: string,
  with_: { encKey?: Sm9EncUserKey; factorySecret?: string },
): Uint8Array {
  let key: Uint8Array;
  if (wrapped.scheme === 'sm9-kem+sm4-gcm') {
    if (!with_.encKey)
      throw new KapokError(
        'KAPOK_GM_INVALID_KEY',
        "unwrapping sm9-kem+sm4-gcm needs the serial's SM9 encryption key",
      );
    key = sm9Decapsulate(with_.encKey, serial, fromHex(wrapped.encapsulation, 'encapsulation', 65), 16);
  } else if (wrapped.scheme === 'pbkdf2-sm3+sm4-gcm') {
    if (!with_.factorySecret)
      throw new KapokError('KAPOK_GM_INVALID_KEY', 'unwrapping pbkdf2-sm3+sm4-gcm needs the factory secret');
    key = pbkdf2Sm3(with_.factorySecret, pbkdf2Salt(serial), wrapped.iterations, 16);
  } else {
    throw new KapokError('KAPOK_GM_INVALID_INPUT', 'wrapped key: unknown scheme');
  }
  return sm4GcmDecrypt(
    key,
    fromHex(wrapped.nonce, 'nonce', 12),
    fromHex(wrapped.ciphertext, 'ciphertext'),
    fromHex(wrapped.tag, 'tag', 16),
    aad(serial),
  );
}
