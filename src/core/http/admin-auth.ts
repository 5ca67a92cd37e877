import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { KapokError } from '../errors.js';

/**
 * Bearer-token guard for a capability's admin surface (its /api/<cap> routes, its /ws/* stream,
 * model control). With a token configured, `Authorization: Bearer <token>` is required; without
 * one the surface is open under profile default and refused under profile gov (the contract's
 * "admin APIs require auth").
 */
export interface AdminGuardOptions {
  /** The configured token (a secret), or null. */
  token: string | null;
  gov: boolean;
  /** Config key of the token, named in errors: `edge.adminToken`. */
  key: string;
  /** What is guarded, for messages: `the edge API`. */
  what: string;
}

export interface AdminGuard {
  /** Throws KAPOK_HTTP_UNAUTHORIZED (401) unless the Authorization header passes. */
  check(authorization: string | undefined): void;
  /** Adds the check as an onRequest hook of a (encapsulated) Fastify scope. */
  hook(scope: FastifyInstance): void;
  /** For an HTTP upgrade: true when allowed; otherwise answers 401 on the socket and destroys it. */
  upgrade(req: IncomingMessage, socket: Duplex): boolean;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function createAdminGuard(o: AdminGuardOptions): AdminGuard {
  if (!o.key || !o.what) throw new TypeError('createAdminGuard: key and what are required');
  // Compared as digests: constant time, and the token's length never leaks.
  const expected = o.token ? digest(o.token) : null;
  const check = (authorization: string | undefined) => {
    if (!expected) {
      if (o.gov)
        throw new KapokError(
          'KAPOK_HTTP_UNAUTHORIZED',
          `${o.what} is closed under profile gov until ${o.key} is set`,
        );
      return;
    }
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m?.[1] || !timingSafeEqual(digest(m[1]), expected))
      throw new KapokError('KAPOK_HTTP_UNAUTHORIZED', `${o.what} needs Authorization: Bearer <${o.key}>`);
  };
  return {
    check,
    hook(scope) {
      if (!expected && !o.gov) return;
      scope.addHook('onRequest', async (req) => check(req.headers.authorization));
    },
    upgrade(req, socket) {
      try {
        check(req.headers.authorization);
        return true;
      } catch (err) {
        const body = JSON.stringify({
          error: { code: 'KAPOK_HTTP_UNAUTHORIZED', message: (err as Error).message },
        });
        socket.end(
          `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return false;
      }
    },
  };
}
