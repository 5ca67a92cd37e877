import { randomBytes } from 'node:crypto';
import { KapokError } from '../core/errors.js';
import { sm2Sign, sm2Verify } from '../crypto/sm2.js';

/**
 * Device tokens: JWT compact form with header {"alg":"SM2SM3","typ":"JWT","kid":"token-<n>"}, claims
 * {sub: serial, grp: group, veh: vehicle id, iat, exp, jti}, and an SM2 signature (raw r||s, 64 bytes, default ID)
 * over `header.payload`, base64url throughout.
 */

export interface DeviceClaims {
  sub: string;
  grp: string;
  /** The vehicle id bound at registration (absent in tokens from before the binding: the serial). */
  veh?: string;
  iat: number;
  exp: number;
  jti: string;
}

const header = (kid: string) =>
  Buffer.from(JSON.stringify({ alg: 'SM2SM3', typ: 'JWT', kid })).toString('base64url');
const B64URL = /^[A-Za-z0-9_-]+$/;

export function issueDeviceToken(
  privateKey: Uint8Array,
  publicKey: Uint8Array,
  kid: string,
  claims: { sub: string; grp: string; veh?: string },
  ttlSeconds: number,
  nowMs: number = Date.now(),
): { token: string; claims: DeviceClaims } {
  const iat = Math.floor(nowMs / 1000);
  const full: DeviceClaims = {
    ...claims,
    iat,
    exp: iat + ttlSeconds,
    jti: randomBytes(9).toString('base64url'),
  };
  const signingInput = `${header(kid)}.${Buffer.from(JSON.stringify(full)).toString('base64url')}`;
  const sig = sm2Sign(privateKey, signingInput, { format: 'raw', publicKey });
  return { token: `${signingInput}.${Buffer.from(sig).toString('base64url')}`, claims: full };
}

const invalid = (why: string) =>
  new KapokError('KAPOK_GM_TOKEN_INVALID', `device token ${why}: authenticate again for a fresh token`);

/**
 * Signature and expiry only; whether the device is still active is the caller's check. `keyFor`
 * gives the public key of a token key id, or null for an unknown one.
 */
export function verifyDeviceToken(
  keyFor: (kid: string) => Uint8Array | null,
  token: string,
  nowMs: number = Date.now(),
): DeviceClaims {
  if (typeof token !== 'string' || token.length > 4096) throw invalid('is missing or too long');
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p)))
    throw invalid('is not header.payload.signature');
  const [head, payload, sig] = parts as [string, string, string];
  let h: { alg?: unknown; typ?: unknown; kid?: unknown };
  try {
    h = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
  } catch {
    throw invalid('header is not JSON');
  }
  if (h?.alg !== 'SM2SM3' || h.typ !== 'JWT' || typeof h.kid !== 'string')
    throw invalid('header is not {"alg":"SM2SM3","typ":"JWT","kid":...}');
  const publicKey = keyFor(h.kid);
  if (!publicKey) throw invalid('names an unknown signing key');
  if (!sm2Verify(publicKey, `${head}.${payload}`, Buffer.from(sig, 'base64url'), { format: 'raw' }))
    throw invalid('signature does not verify');
  let claims: DeviceClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid('payload is not JSON');
  }
  if (typeof claims.sub !== 'string' || typeof claims.grp !== 'string' || !Number.isInteger(claims.exp))
    throw invalid('lacks sub, grp or exp');
  if (claims.veh !== undefined && typeof claims.veh !== 'string') throw invalid('veh is not a string');
  if (Math.floor(nowMs / 1000) >= claims.exp)
    throw new KapokError(
      'KAPOK_GM_TOKEN_EXPIRED',
      'device token has expired: authenticate again for a fresh token',
    );
  return claims;
}
