/** SM9 identity-based cryptography (GM/T 0044): signatures and key encapsulation. */
export { type Sm9Encapsulated, sm9Decapsulate, sm9Encapsulate } from './kem.js';
export {
  HID_ENCRYPT,
  HID_SIGN,
  type Random,
  Sm9EncMasterKey,
  Sm9EncMasterPublicKey,
  Sm9EncUserKey,
  Sm9SignMasterKey,
  Sm9SignMasterPublicKey,
  Sm9SignUserKey,
} from './keys.js';
export { decodeSm9Signature, encodeSm9Signature, type Sm9Signature, sm9Sign, sm9Verify } from './sign.js';
