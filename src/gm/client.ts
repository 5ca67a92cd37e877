import { randomBytes } from 'node:crypto';
import { ERROR_CATALOGUE, type ErrorCode, KapokError } from '../core/errors.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { Sm9SignMasterPublicKey, Sm9SignUserKey } from '../crypto/sm9/keys.js';
import { sm9Sign } from '../crypto/sm9/sign.js';
import type { AuthResult } from './auth.js';
import { challengeString } from './auth.js';

/**
 * Device side of the identity chain, for tests, `kapok device simulate` and integrators to copy:
 * sign the challenge with the device's SM9 key and exchange it for a token.
 */

export interface DeviceCredentials {
  serial: string;
  /** The device's SM9 signing key (04||x||y), unwrapped. */
  signKey: Uint8Array;
  /** SM9 sign master public key (from the registration or GET /api/gm/master). */
  signMasterPublicKey: Uint8Array;
}

export function authRequestBody(c: DeviceCredentials, nowMs: number = Date.now()) {
  const nonce = randomBytes(18).toString('base64url');
  const timestamp = Math.floor(nowMs / 1000);
  const master = Sm9SignMasterPublicKey.fromBytes(c.signMasterPublicKey);
  const signature = sm9Sign(
    master,
    Sm9SignUserKey.fromBytes(c.signKey),
    challengeString(c.serial, nonce, timestamp),
  );
  return { serial: c.serial, nonce, timestamp, signature: toHex(signature) };
}

/** POST /api/gm/devices/auth on baseUrl (e.g. http://127.0.0.1:8080); resolves with the token. */
export async function authenticateDevice(baseUrl: string, c: DeviceCredentials): Promise<AuthResult> {
  const res = await fetch(new URL('/api/gm/devices/auth', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(authRequestBody(c)),
  });
  const body = (await res.json()) as AuthResult & { error?: { code: string; message: string } };
  if (!res.ok) {
    const code = body.error?.code;
    throw new KapokError(
      code && code in ERROR_CATALOGUE ? (code as ErrorCode) : 'KAPOK_GM_AUTH_FAILED',
      `authentication refused (${res.status}): ${body.error?.message ?? 'no detail'}`,
    );
  }
  return body;
}

export const credentialsFromHex = (
  serial: string,
  signKeyHex: string,
  masterHex: string,
): DeviceCredentials => ({
  serial,
  signKey: fromHex(signKeyHex, 'sign key', 65),
  signMasterPublicKey: fromHex(masterHex, 'sign master public key', 129),
});
