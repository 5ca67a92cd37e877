/** Kapok's GM (national cryptography) primitives: SM2, SM3, SM4, SM9. See docs/gm.md. */
export { fromHex, toHex } from './bytes.js';
export {
  decodeSm2Signature,
  encodeSm2Signature,
  SM2_DEFAULT_ID,
  type Sm2KeyPair,
  type Sm2SignatureFormat,
  sm2GenerateKeyPair,
  sm2PublicKey,
  sm2Sign,
  sm2Verify,
  sm2Z,
} from './sm2.js';
export { hmacSm3, pbkdf2Sm3, sm3, sm3Kdf } from './sm3.js';
export {
  type GcmSealed,
  SM4_GCM_TAG_BYTES,
  SM4_KEY_BYTES,
  type Sm4Mode,
  sm4Decrypt,
  sm4Encrypt,
  sm4GcmDecrypt,
  sm4GcmEncrypt,
} from './sm4.js';
export * from './sm9/index.js';
export {
  createSm9VerifyPool,
  type Sm9VerifyPool,
  type Sm9VerifyPoolOptions,
  type VerifyJob,
} from './sm9/pool.js';
