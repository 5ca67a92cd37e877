/**
 * The gm capability's public surface: its factory (wired by src/app.ts) and what `kapok device`,
 * `kapok gm` and device-side integrators may call. Everything else in src/gm is the capability's own.
 */

export { fromHex, toHex } from '../crypto/bytes.js';
export * as gmCrypto from '../crypto/index.js';
export { challengeString, DeviceAuthenticator } from './auth.js';
export { createGm } from './capability.js';
// What the CLI (kapok device) and device-side integrators use.
export { authenticateDevice, authRequestBody, type DeviceCredentials } from './client.js';
export { DeviceRegistry, type Registration } from './devices.js';
export {
  type GmKeys,
  type KeyKind,
  Keyring,
  loadOrCreateMasterKeys,
  readKek,
  rotateMasterKey,
} from './keystore.js';
export { GM_MIGRATIONS } from './migrations.js';
export { isProtectedPayload, openPayload, payloadKey, sealPayload } from './payload.js';
export { unwrapDeviceKey, type WrappedKey } from './wrap.js';
