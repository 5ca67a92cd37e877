import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { upperSnake } from '../config/walk.js';
import { KapokError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The one guard of every admin surface (each capability's /api/<cap> routes, its /ws/* streams,
 * model control over REST and gRPC), with one rule:
 * - a token configured: `Authorization: Bearer <token>` is required from everyone (401 otherwise);
 * - no token, profile default: only loopback clients are served (403 KAPOK_HTTP_ADMIN_DISABLED
 *   to the rest), and the start logs it with the fix: a host-local operator works out of the box,
 *   the network does not get an open admin API because http.host defaults to 0.0.0.0;
 * - no token, profile gov: refused to everyone (the contract's "admin APIs require auth").
 * A request that came through a proxy (Forwarded / X-Forwarded-For) never counts as loopback.
 */
export interface AdminGuardOptions {
  /** The configured token (a secret), or null. */
  token: string | null;
  gov: boolean;
  /** Config key of the token, named in errors: `edge.adminToken`. */
  key: string;
  /** What is guarded, for messages: `the edge API`. */
  what: string;
  /** Where the start notice goes (no token under profile default). */
  logger?: Logger;
}

/** Who is asking: the socket's remote address, and whether a proxy says it forwarded the request. */
export interface Peer {
  remoteAddress: string | undefined;
  forwarded: boolean;
}

export interface AdminGuard {
  /** Throws KAPOK_HTTP_UNAUTHORIZED (401) or KAPOK_HTTP_ADMIN_DISABLED (403) unless allowed. */
  check(authorization: string | undefined, peer: Peer): void;
  /** Adds the check as an onRequest hook of a (encapsulated) Fastify scope. */
  hook(scope: FastifyInstance): void;
  /** For an HTTP upgrade: true when allowed; otherwise answers 401/403 on the socket and destroys it. */
  upgrade(req: IncomingMessage, socket: Duplex): boolean;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function peerOf(req: IncomingMessage): Peer {
  const h = req.headers;
  return {
    remoteAddress: req.socket.remoteAddress,
    forwarded: h.forwarded !== undefined || h['x-forwarded-for'] !== undefined,
  };
}

/**
 * A gRPC peer as grpc-js reports it (`127.0.0.1:5000`, `::1:5000`; other stacks write
 * `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`, `unix:/path`) as a Peer. A unix socket is local.
 */
export function grpcPeer(peer: string): Peer {
  if (peer.startsWith('unix:')) return { remoteAddress: '127.0.0.1', forwarded: false };
  const p = peer.replace(/^ipv[46]:/, '');
  const m = /^\[([^\]]+)\]:\d+$/.exec(p) ?? /^(.+):\d+$/.exec(p);
  return { remoteAddress: m?.[1], forwarded: false };
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

export function createAdminGuard(o: AdminGuardOptions): AdminGuard {
  if (!o.key || !o.what) throw new TypeError('createAdminGuard: key and what are required');
  // Compared as digests: constant time, and the token's length never leaks.
  const expected = o.token ? digest(o.token) : null;
  const env = `KAPOK_${o.key.split('.').map(upperSnake).join('__')}`;
  if (!expected && !o.gov)
    o.logger?.warn(
      { key: o.key },
      `${o.what} answers loopback clients only: set ${o.key} (${env}) to reach it from other hosts`,
    );
  const check = (authorization: string | undefined, peer: Peer) => {
    if (!expected) {
      if (o.gov)
        throw new KapokError(
          'KAPOK_HTTP_ADMIN_DISABLED',
          `${o.what} is closed under profile gov until ${o.key} is set (${env})`,
        );
      if (!peer.forwarded && isLoopback(peer.remoteAddress)) return;
      throw new KapokError(
        'KAPOK_HTTP_ADMIN_DISABLED',
        `${o.what} answers loopback clients only until ${o.key} is set (${env})`,
      );
    }
    const m = /^Bearer[ \t]+(\S+)$/i.exec(authorization ?? '');
    if (!m?.[1] || !timingSafeEqual(digest(m[1]), expected))
      throw new KapokError('KAPOK_HTTP_UNAUTHORIZED', `${o.what} needs Authorization: Bearer <${o.key}>`);
  };
  return {
    check,
    hook(scope) {
      scope.addHook('onRequest', async (req) => check(req.headers.authorization, peerOf(req.raw)));
    },
    upgrade(req, socket) {
      try {
        check(req.headers.authorization, peerOf(req));
        return true;
      } catch (err) {
        const e = err as KapokError;
        const body = JSON.stringify({ error: { code: e.code, message: e.message } });
        const status = e.status === 403 ? '403 Forbidden' : '401 Unauthorized';
        socket.end(
          `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return false;
      }
    },
  };
}
