import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { KapokError } from '../errors.js';
import type { Principal } from './admin-auth.js';

/**
 * Browser sessions for the web console: a login with an admin token becomes a random session id in
 * an httpOnly, SameSite=Strict cookie, so the token never sits in page script. The admin guard takes
 * the cookie in place of `Authorization: Bearer`, with two CSRF defences a cookie alone cannot pass:
 * a mutation must carry the session's CSRF token in `X-Kapok-CSRF` (a custom header, so a
 * cross-site form or fetch cannot send it without a CORS preflight), and a request whose Origin names
 * another host is refused (WebSocket upgrades included: cross-site WebSocket hijacking).
 * Sessions live in this process's memory (bounded, idle and absolute expiry): a restart logs
 * everyone out, and behind a load balancer the console needs sticky sessions.
 */

export const SESSION_COOKIE = 'kapok_session';
export const CSRF_HEADER = 'x-kapok-csrf';

export interface SessionOptions {
  /** Idle expiry: a session unused this long is gone. */
  idleMs: number;
  /** Absolute expiry from login. */
  maxAgeMs: number;
  /** At most this many live sessions; the least recently used is dropped beyond it. */
  maxSessions: number;
  /** Cookie `Secure` attribute (set when served over HTTPS, e.g. behind a TLS proxy). */
  secure: boolean;
  now?: () => number;
}

interface Session {
  principal: Principal;
  csrf: Buffer;
  created: number;
  seen: number;
}

export interface Sessions {
  /** A new session for `p`: the Set-Cookie value and the CSRF token the page sends on mutations. */
  create(p: Principal): { setCookie: string; csrf: string };
  /**
   * The principal of the request's session cookie, or null (no cookie, unknown or expired).
   * Throws KAPOK_HTTP_CSRF (403) for a cross-origin request or a mutation without the CSRF token.
   */
  resolve(req: IncomingMessage, mutating: boolean): Principal | null;
  /** The CSRF token of the request's live session, or null. */
  csrfOf(req: IncomingMessage): string | null;
  /** Ends the request's session; returns the Set-Cookie value that clears the cookie. */
  destroy(req: IncomingMessage): string;
  readonly size: number;
}

const hashId = (id: string) => createHash('sha256').update(id).digest('base64url');

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieOf(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

/** True when the request's Origin (if any) is this server's own (same host and port as Host). */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser cross-origin request (curl, same-origin GET)
  if (origin === 'null') return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export function createSessions(o: SessionOptions): Sessions {
  for (const k of ['idleMs', 'maxAgeMs', 'maxSessions'] as const)
    if (!(Number.isInteger(o[k]) && o[k] > 0))
      throw new TypeError(`createSessions: ${k} must be a positive integer`);
  const now = o.now ?? Date.now;
  // Keyed by the id's SHA-256: a lookup's timing can say nothing about a live id.
  const live = new Map<string, Session>();
  const attrs = `Path=/; HttpOnly; SameSite=Strict${o.secure ? '; Secure' : ''}`;

  const find = (req: IncomingMessage): [string, Session] | null => {
    const id = cookieOf(req.headers.cookie, SESSION_COOKIE);
    if (!id || id.length > 128) return null;
    const key = hashId(id);
    const s = live.get(key);
    if (!s) return null;
    const t = now();
    if (t - s.seen > o.idleMs || t - s.created > o.maxAgeMs) {
      live.delete(key);
      return null;
    }
    return [key, s];
  };

  return {
    get size() {
      return live.size;
    },
    create(principal) {
      const id = randomBytes(32).toString('base64url');
      const csrf = randomBytes(24);
      const t = now();
      while (live.size >= o.maxSessions) {
        const oldest = live.keys().next().value;
        if (oldest === undefined) break;
        live.delete(oldest);
      }
      live.set(hashId(id), { principal, csrf, created: t, seen: t });
      const maxAge = Math.floor(o.maxAgeMs / 1000);
      return {
        setCookie: `${SESSION_COOKIE}=${id}; ${attrs}; Max-Age=${maxAge}`,
        csrf: csrf.toString('base64url'),
      };
    },
    resolve(req, mutating) {
      const found = find(req);
      if (!found) return null;
      const [key, s] = found;
      if (!sameOrigin(req))
        throw new KapokError(
          'KAPOK_HTTP_CSRF',
          'the console session cookie is accepted from the console own origin only (Origin differs from Host)',
        );
      if (mutating) {
        const sent = Buffer.from(String(req.headers[CSRF_HEADER] ?? ''), 'base64url');
        if (sent.length !== s.csrf.length || !timingSafeEqual(sent, s.csrf))
          throw new KapokError(
            'KAPOK_HTTP_CSRF',
            `a change made with the console session cookie needs the session's CSRF token in ${CSRF_HEADER} (GET /console/api/session gives it)`,
          );
      }
      s.seen = now();
      // Most recently used last: the eviction above drops the least recently used first.
      live.delete(key);
      live.set(key, s);
      return s.principal;
    },
    csrfOf(req) {
      return find(req)?.[1].csrf.toString('base64url') ?? null;
    },
    destroy(req) {
      const found = find(req);
      if (found) live.delete(found[0]);
      return `${SESSION_COOKIE}=; ${attrs}; Max-Age=0`;
    },
  };
}
