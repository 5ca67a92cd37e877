import { randomBytes } from 'node:crypto';
import { KapokError } from '../core/errors.js';
import { sm3Kdf } from '../crypto/sm3.js';
import { sm4GcmDecrypt, sm4GcmEncrypt } from '../crypto/sm4.js';

/**
 * Telemetry payload protection (SM4-GCM) for device groups listed in gm.payloadProtection.groups.
 *
 * The key is derived from the device's own SM9 signing key dsA: K = SM3-KDF(dsA ‖ "kapok/payload/v1", 16).
 * The device holds dsA; Kapok, as the KGC, can extract it again from the master key, so no further key
 * has to be distributed. The MQTT topic is the additional data, so a ciphertext moved to another topic
 * fails. Wire format: "KG" 0x01 ‖ nonce (12 B) ‖ ciphertext ‖ tag (16 B).
 */
const MAGIC = Buffer.from([0x4b, 0x47, 0x01]);
const INFO = Buffer.from('kapok/payload/v1');
const NONCE = 12;
const TAG = 16;

export function payloadKey(signKey: Uint8Array): Uint8Array {
  return sm3Kdf(Buffer.concat([signKey, INFO]), 16);
}

export function isProtectedPayload(payload: Uint8Array): boolean {
  return payload.length >= MAGIC.length + NONCE + TAG && Buffer.from(payload.subarray(0, 3)).equals(MAGIC);
}

/** What a device sends: the payload sealed for `topic` with its payload key. */
export function sealPayload(key: Uint8Array, topic: string, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE);
  const { ciphertext, tag } = sm4GcmEncrypt(key, nonce, plaintext, Buffer.from(topic));
  return Buffer.concat([MAGIC, nonce, ciphertext, tag]);
}

/** The plaintext; KAPOK_GM_DECRYPT_FAILED when the payload was changed, moved or sealed with another key. */
export function openPayload(key: Uint8Array, topic: string, payload: Uint8Array): Uint8Array {
  if (!isProtectedPayload(payload))
    throw new KapokError(
      'KAPOK_GM_DECRYPT_FAILED',
      'payload is not SM4-GCM sealed (expected "KG" 0x01 ‖ nonce ‖ ciphertext ‖ tag)',
    );
  const nonce = payload.subarray(3, 3 + NONCE);
  const ciphertext = payload.subarray(3 + NONCE, payload.length - TAG);
  const tag = payload.subarray(payload.length - TAG);
  return sm4GcmDecrypt(key, nonce, ciphertext, tag, Buffer.from(topic));
}
