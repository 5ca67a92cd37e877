import type { IncomingMessage } from 'node:http';
import type { Principal } from './admin-auth.js';

/**
 * Browser sessions for the web console: a login with an admin token becomes a random session id in
 * an httpOnly, SameSite=Strict cookie, so the token never sits in page script. The admin guard takes
 * the cookie in place of `Authorization: Bearer`, with two CSRF defences a cookie alone cannot pass:
 * a mutation must carry the session's CSRF token in `X-Kapok-CSRF` (a custom header, so a
 * cross-site form or fetch cannot send it without a CORS preflight), and a request whose Origin names
 * another host is refused (WebSocket upgrades included: cross-site WebSocket hijacking).
 *
 * The Store-backed implementation is the console's (src/console/sessions.ts; core knows no port).
 * Sessions live in the Store (table console_sessions, CONSOLE_MIGRATIONS): they outlive a restart,
 * and instances sharing one PostgreSQL share them (no sticky sessions). A row keeps the SHA-256 of
 * the id (the cookie value is the secret), the CSRF token, the role at login and the admin token's
 * identity (a digest of its digest, never the token). Each read checks idle and absolute expiry and
 * that the token is still in admin.tokens (`tokens()`, which hot reload replaces): a removed token's
 * sessions end at once, and the role is the token's current one (a downgrade applies at once).
 */

export const SESSION_COOKIE = 'kapok_session';
export const CSRF_HEADER = 'x-kapok-csrf';

export interface LiveSession {
  principal: Principal;
  csrf: string;
}

export interface Sessions {
  /** A new session for `p`: the Set-Cookie value and the CSRF token the page sends on mutations. */
  create(p: Principal): Promise<{ setCookie: string; csrf: string }>;
  /**
   * The principal of the request's session cookie, or null (no cookie, unknown, expired, or its
   * token no longer in admin.tokens). Rejects with KAPOK_HTTP_CSRF (403) for a cross-origin request
   * or a mutation without the CSRF token.
   */
  resolve(req: IncomingMessage, mutating: boolean): Promise<Principal | null>;
  /** The request's live session and its CSRF token (the page load), or null; no Origin check. */
  current(req: IncomingMessage): Promise<LiveSession | null>;
  /** Ends the request's session; returns the Set-Cookie value that clears the cookie. */
  destroy(req: IncomingMessage): Promise<string>;
  /** Ends every session whose token is no longer in `tokens()` (after admin.tokens changed); returns how many. */
  prune(): Promise<number>;
  /** Deletes expired sessions now; returns how many. */
  purge(): Promise<number>;
  /** Stops the periodic purge (the store is closed by its owner). */
  close(): void;
}

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
