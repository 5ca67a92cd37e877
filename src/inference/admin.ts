import { createHash, timingSafeEqual } from 'node:crypto';
import { KapokError } from '../core/errors.js';

/**
 * Model control (repository load/unload over REST and gRPC) is an admin API. With
 * inference.adminToken set it needs `Authorization: Bearer <token>`; without one it is open under
 * the default profile (as Triton's is) and refused under profile gov.
 */
export function checkAdmin(authorization: string | undefined, token: string | null, gov: boolean): void {
  if (!token) {
    if (gov)
      throw new KapokError(
        'KAPOK_HTTP_UNAUTHORIZED',
        'model control is disabled under profile gov until inference.adminToken is set',
      );
    return;
  }
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  const digest = (s: string) => createHash('sha256').update(s).digest();
  // Compared as digests: constant time, and the token's length never leaks.
  if (!m?.[1] || !timingSafeEqual(digest(m[1]), digest(token)))
    throw new KapokError(
      'KAPOK_HTTP_UNAUTHORIZED',
      'model control needs Authorization: Bearer <inference.adminToken>',
    );
}
