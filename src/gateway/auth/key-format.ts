import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API key format: `sk-kapok-<id: 16 hex>-<secret: 43 base64url>`. The id finds the stored record;
 * only the SHA-256 of the whole key is stored (keys are 256-bit random, so a slow hash would add
 * latency without adding safety) and compared in constant time.
 */
const KEY = /^sk-kapok-([0-9a-f]{16})-([A-Za-z0-9_-]{43})$/;

export interface NewKey {
  id: string;
  key: string;
  hash: string;
}

export function generateKey(): NewKey {
  const id = randomBytes(8).toString('hex');
  const key = `sk-kapok-${id}-${randomBytes(32).toString('base64url')}`;
  return { id, key, hash: hashKey(key) };
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The id of a well-formed key, else null (malformed input never reaches the store). */
export function keyId(presented: string): string | null {
  const m = KEY.exec(presented);
  return m ? (m[1] as string) : null;
}

export function looksLikeKapokKey(token: string): boolean {
  return token.startsWith('sk-kapok-');
}

/** Constant-time comparison of the presented key's hash with the stored one. */
export function keyMatches(presented: string, storedHash: string): boolean {
  // The raw digest (no hex round trip): this runs on every gateway request.
  const a = createHash('sha256').update(presented).digest();
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
