import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  onRequestHookHandler,
  onSendHookHandler,
} from 'fastify';
import { upperSnake } from '../config/walk.js';
import { KapokError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Sessions } from './session.js';

/**
 * The one guard of every admin surface (each capability's /api/<cap> routes, its /ws/* streams,
 * model control over REST and gRPC). Tokens carry a role (viewer < operator < admin): the platform's
 * `admin.tokens` serve every capability, a capability's own token (`edge.adminToken`) is role admin
 * for that capability alone. Each route declares the role it needs (a role map per scope, `hook`).
 * - any token configured: `Authorization: Bearer <token>` is required from everyone (401 for a
 *   missing or unknown one, 403 KAPOK_HTTP_FORBIDDEN for a known one whose role is too low);
 * - no token at all, profile default: only loopback clients are served, as admin (403
 *   KAPOK_HTTP_ADMIN_DISABLED to the rest), and the start logs it with the fix: a host-local
 *   operator works out of the box, the network does not get an open admin API (http.host 0.0.0.0);
 * - no token at all, profile gov: refused to everyone (config check refuses this case already).
 * A request that came through a proxy (Forwarded / X-Forwarded-For) never counts as loopback.
 */

export const ADMIN_ROLES = ['viewer', 'operator', 'admin'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];
/** What a route of a guarded scope needs: a role, or `public` (device auth, OIP inference, ...). */
export type RouteRole = AdminRole | 'public';
/** `'METHOD /path'` as registered in the scope (no prefix) → role. Every route of the scope is listed. */
export type RouteRoles = Readonly<Record<string, RouteRole>>;

const RANK: Record<RouteRole, number> = { public: -1, viewer: 0, operator: 1, admin: 2 };

/** A configured token (config `admin.tokens`). */
export interface AdminTokenConfig {
  name: string;
  role: AdminRole;
  token: string;
}

/** A token hashed once at start: the guard keeps the digest, never the secret. */
export interface HashedToken {
  readonly name: string;
  readonly role: AdminRole;
  readonly digest: Buffer;
}

/** Who was let in: the token's name (for logs, never the token), or `loopback`. */
export interface Principal {
  readonly name: string;
  readonly role: AdminRole;
}

export interface AdminGuardOptions {
  /** The capability's own token (a secret; role admin for this capability), or null. */
  token: string | null;
  /**
   * The platform's role tokens (`admin.tokens`), hashed once by the wiring point; a function is read
   * on every check (hot reload of admin.tokens replaces the list).
   */
  tokens?: readonly HashedToken[] | (() => readonly HashedToken[]);
  gov: boolean;
  /** Config key of the capability's token, named in errors: `edge.adminToken`. */
  key: string;
  /** What is guarded, for messages: `the edge API`. */
  what: string;
  /** Where the start notice goes (no token under profile default). */
  logger?: Logger;
  /**
   * Told of every admin act (a non-GET request let in, once its answer's status is known) and of
   * every refusal (401/403), before the answer is sent: the wiring point records them in the audit
   * trail. A throw here is logged, never changes the answer.
   */
  onAct?: (e: AdminActEvent) => Promise<void> | void;
  /**
   * The web console's browser sessions (core/http/session.ts): a request without Authorization is
   * let in by its session cookie, under the CSRF and Origin checks made there.
   */
  sessions?: Sessions;
}

/** An admin request as the audit trail sees it: who, what, the answer; never the token. */
export interface AdminActEvent {
  /** The guard's config key, naming the surface: `gateway.auth.adminToken`. */
  scope: string;
  /** The token's name or `loopback`; null when the guard refused before recognising anyone. */
  actor: string | null;
  method: string;
  /** The route as registered in its scope, `DELETE /keys/:id` (a WebSocket: `GET <path>`). */
  route: string;
  /** The route's path parameters (`{ id }`): what the act was on. */
  params: Readonly<Record<string, string>>;
  ip: string | undefined;
  status: number;
  /** The guard's refusal code (KAPOK_HTTP_UNAUTHORIZED, _FORBIDDEN, _ADMIN_DISABLED), or null. */
  denied: string | null;
  requestId: string | null;
  /** The parsed request body (for the act's target: a name or serial the caller chose). */
  body?: unknown;
}

/** Who is asking: the socket's remote address, and whether a proxy says it forwarded the request. */
export interface Peer {
  remoteAddress: string | undefined;
  forwarded: boolean;
}

export interface AdminGuard {
  /**
   * Throws KAPOK_HTTP_UNAUTHORIZED (401), KAPOK_HTTP_FORBIDDEN (403, role too low) or
   * KAPOK_HTTP_ADMIN_DISABLED (403, no token configured) unless allowed; returns who was let in.
   */
  check(authorization: string | undefined, peer: Peer, need: AdminRole): Principal;
  /**
   * Guards every route of a (encapsulated) Fastify scope registered after this call, each with the
   * role `roles` gives it. A route missing from the map is a start error, so none is left open by
   * omission. Non-GET acts are logged at info with the token's name.
   */
  hook(scope: FastifyInstance, roles: RouteRoles): void;
  /**
   * For an HTTP upgrade (role viewer unless said): true when allowed; otherwise answers 401/403 and
   * destroys the socket. Asynchronous: a session cookie is looked up in the Store.
   */
  upgrade(req: IncomingMessage, socket: Duplex, need?: AdminRole): Promise<boolean>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const LOOPBACK: Principal = Object.freeze({ name: 'loopback', role: 'admin' });

export function hashAdminTokens(tokens: readonly AdminTokenConfig[]): HashedToken[] {
  return tokens.map((t) => Object.freeze({ name: t.name, role: t.role, digest: digest(t.token) }));
}

/** The info line of an admin act (a non-GET request let in): names the token, never shows it. */
export function logAdminAct(log: Pick<FastifyBaseLogger, 'info'>, p: Principal, act: string): void {
  log.info({ admin: p.name, role: p.role, act }, 'admin act');
}

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
  // Compared as digests: constant time, and no token's length leaks.
  const own: HashedToken | null = o.token ? { name: o.key, role: 'admin', digest: digest(o.token) } : null;
  const roleTokens =
    typeof o.tokens === 'function' ? o.tokens : () => (o.tokens ?? []) as readonly HashedToken[];
  // The entries of the list in force, rebuilt only when a reload brings a new list.
  let lastList: readonly HashedToken[] | null = null;
  let lastEntries: readonly HashedToken[] = [];
  const current = (): readonly HashedToken[] => {
    const list = roleTokens();
    if (list !== lastList) {
      lastList = list;
      lastEntries = own ? [...list, own] : list;
    }
    return lastEntries;
  };
  const env = `KAPOK_${o.key.split('.').map(upperSnake).join('__')}`;
  // What opens this door, said once: the console's own key is admin.tokens.
  const setKey = o.key === 'admin.tokens' ? `admin.tokens (${env})` : `${o.key} (${env}) or admin.tokens`;
  const until =
    o.key === 'admin.tokens'
      ? `admin.tokens (${env}) lists a token`
      : `${o.key} is set (${env}) or admin.tokens lists a token`;
  const wantedOf = (n: number) => (n ? `a token of admin.tokens${o.token ? ` or ${o.key}` : ''}` : o.key);
  if (current().length === 0 && !o.gov)
    o.logger?.warn(
      { key: o.key },
      `${o.what} answers loopback clients only: set ${setKey} to reach it from other hosts`,
    );

  const check = (authorization: string | undefined, peer: Peer, need: AdminRole): Principal => {
    const entries = current();
    if (entries.length === 0) {
      if (o.gov)
        throw new KapokError(
          'KAPOK_HTTP_ADMIN_DISABLED',
          `${o.what} is closed under profile gov until ${until}`,
        );
      if (!peer.forwarded && isLoopback(peer.remoteAddress)) return LOOPBACK;
      throw new KapokError(
        'KAPOK_HTTP_ADMIN_DISABLED',
        `${o.what} answers loopback clients only until ${until}`,
      );
    }
    const m = /^Bearer[ \t]+(\S+)$/i.exec(authorization ?? '');
    let found: HashedToken | null = null;
    if (m?.[1]) {
      const d = digest(m[1]);
      // Every entry is compared, so the time taken says nothing about which one matched.
      for (const e of entries) {
        const eq = timingSafeEqual(d, e.digest);
        if (eq && (!found || RANK[e.role] > RANK[found.role])) found = e;
      }
    }
    if (!found)
      throw new KapokError(
        'KAPOK_HTTP_UNAUTHORIZED',
        `${o.what} needs Authorization: Bearer <${wantedOf(roleTokens().length)}>`,
      );
    if (RANK[found.role] < RANK[need])
      throw new KapokError(
        'KAPOK_HTTP_FORBIDDEN',
        `${o.what}: this needs role ${need} or higher; the token sent has role ${found.role}`,
      );
    return found;
  };

  // A browser session stands in for the bearer token only when no Authorization header is sent.
  const authenticate = async (
    req: IncomingMessage,
    need: AdminRole,
    mutating: boolean,
  ): Promise<Principal> => {
    const s = req.headers.authorization === undefined ? await o.sessions?.resolve(req, mutating) : null;
    if (!s) return check(req.headers.authorization, peerOf(req), need);
    if (RANK[s.role] < RANK[need])
      throw new KapokError(
        'KAPOK_HTTP_FORBIDDEN',
        `${o.what}: this needs role ${need} or higher; the console session has role ${s.role}`,
      );
    return s;
  };

  // What the guard decided for a request, for onSend (acts are told once the status is known).
  const seen = new WeakMap<FastifyRequest, { actor: string | null; denied: string | null }>();
  const routeHook =
    (need: AdminRole): onRequestHookHandler =>
    async (req) => {
      let p: Principal;
      try {
        p = await authenticate(req.raw, need, req.method !== 'GET' && req.method !== 'HEAD');
      } catch (err) {
        seen.set(req, { actor: null, denied: (err as KapokError).code ?? 'KAPOK_HTTP_UNAUTHORIZED' });
        throw err;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        seen.set(req, { actor: p.name, denied: null });
        logAdminAct(req.log, p, `${req.method} ${(req.url.split('?')[0] ?? '').slice(0, 200)}`);
      }
    };
  const tell = async (e: AdminActEvent, log: Pick<FastifyBaseLogger, 'error'> | undefined) => {
    try {
      await o.onAct?.(e);
    } catch (err) {
      log?.error(
        { code: (err as KapokError).code, reason: (err as Error).message },
        'admin act not recorded',
      );
    }
  };
  const sendHook =
    (route: string): onSendHookHandler =>
    async (req, reply, payload) => {
      const s = seen.get(req);
      if (!s) return payload;
      await tell(
        {
          scope: o.key,
          actor: s.actor,
          method: req.method,
          route,
          params: (req.params ?? {}) as Record<string, string>,
          ip: req.raw.socket.remoteAddress,
          status: reply.statusCode,
          denied: s.denied,
          requestId: String(req.id),
          body: req.body,
        },
        req.log,
      );
      return payload;
    };

  return {
    check,
    hook(scope, roles) {
      scope.addHook('onRoute', (route) => {
        const path = route.routePath || '/'; // a scope's '/' is also mounted bare (/v2)
        let role: RouteRole | undefined;
        for (const method of [route.method].flat()) {
          const r = roles[`${method} ${path}`] ?? (method === 'HEAD' ? roles[`GET ${path}`] : undefined);
          if (!r)
            throw new Error(
              `${o.what}: ${method} ${route.url} declares no admin role: add it to the scope's role map`,
            );
          if (!role || RANK[r] > RANK[role]) role = r;
        }
        if (!role || role === 'public') return;
        const own = route.onRequest;
        // The guard first: nothing of the route runs for a refused caller.
        route.onRequest = [routeHook(role), ...(own ? [own].flat() : [])];
        if (o.onAct) {
          const sends = route.onSend;
          route.onSend = [
            sendHook(`${[route.method].flat().join(',')} ${path}`),
            ...(sends ? [sends].flat() : []),
          ];
        }
      });
    },
    async upgrade(req, socket, need = 'viewer') {
      // Node leaves an upgraded socket without an error listener: a reset during the session
      // lookup must not become an uncaught error.
      const onError = () => socket.destroy();
      socket.on('error', onError);
      try {
        await authenticate(req, need, false);
        socket.off('error', onError);
        return !socket.destroyed;
      } catch (err) {
        // A refusal keeps its 401/403; anything else (the session Store failing) is answered with
        // its own status and a message that names no internals: the client retries, nothing leaks.
        const e: KapokError =
          err instanceof KapokError && (err.status === 401 || err.status === 403)
            ? err
            : new KapokError(
                'KAPOK_STORE_UNAVAILABLE',
                'the session could not be checked now; retry shortly',
              );
        void tell(
          {
            scope: o.key,
            actor: null,
            method: req.method ?? 'GET',
            route: `GET ${(req.url ?? '/').split('?')[0]}`,
            params: {},
            ip: req.socket.remoteAddress,
            status: e.status,
            denied: e.code,
            requestId: null,
          },
          o.logger,
        );
        const body = JSON.stringify({ error: { code: e.code, message: e.message } });
        const status =
          e.status === 403
            ? '403 Forbidden'
            : e.status === 401
              ? '401 Unauthorized'
              : '503 Service Unavailable';
        socket.end(
          `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return false;
      }
    },
  };
}
