import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { KapokError } from '../core/errors.js';
import type { AdminRole, HashedToken, Principal } from '../core/http/admin-auth.js';
import { CSRF_HEADER, cookieOf, SESSION_COOKIE, type Sessions, sameOrigin } from '../core/http/session.js';
import type { Queryable } from '../ports/store.js';

/**
 * The console's browser sessions on the Store port (core/http/session.ts has the contract the admin
 * guards use, and why sessions are kept this way). Wired by src/app.ts for every guard.
 */

export interface SessionOptions {
  /** Where sessions are kept (migrated with CONSOLE_MIGRATIONS). */
  store: Queryable;
  /** The role tokens in force (admin.tokens, hashed); read on every check, so a reload applies at once. */
  tokens: () => readonly HashedToken[];
  /** Idle expiry: a session unused this long is gone. */
  idleMs: number;
  /** Absolute expiry from login. */
  maxAgeMs: number;
  /** At most this many live sessions; the least recently used is dropped beyond it. */
  maxSessions: number;
  /** Cookie `Secure` attribute (set when served over HTTPS, e.g. behind a TLS proxy). */
  secure: boolean;
  /**
   * The last-used time is written at most this often per session (not a write per request), so
   * idle expiry and the least-recently-used order are exact to within it. Default: a tenth of
   * idleMs, at most a minute.
   */
  touchMs?: number;
  /** How often expired rows are deleted (default: a minute). */
  purgeMs?: number;
  /** Told when the periodic purge fails (the next one tries again). */
  onError?: (err: unknown) => void;
  now?: () => number;
}

interface Row {
  csrf: string;
  name: string;
  role: string;
  token_id: string | null;
  created_ms: number;
  seen_ms: number;
}

const ROLES: readonly string[] = ['viewer', 'operator', 'admin'];
const hashId = (id: string) => createHash('sha256').update(id).digest('base64url');
/** A token's identity in a row: a digest of the guard's digest, labelled, so a row holds nothing the guard compares. */
const tokenId = (digest: Buffer) =>
  createHash('sha256').update('kapok console session token\0').update(digest).digest();

export function createSessions(o: SessionOptions): Sessions {
  if (!o.store) throw new TypeError('createSessions: store is required');
  if (typeof o.tokens !== 'function') throw new TypeError('createSessions: tokens must be a function');
  for (const k of ['idleMs', 'maxAgeMs', 'maxSessions'] as const)
    if (!(Number.isInteger(o[k]) && o[k] > 0))
      throw new TypeError(`createSessions: ${k} must be a positive integer`);
  const touchMs = o.touchMs ?? Math.min(60_000, Math.ceil(o.idleMs / 10));
  const purgeMs = o.purgeMs ?? 60_000;
  for (const [k, v] of [
    ['touchMs', touchMs],
    ['purgeMs', purgeMs],
  ] as const)
    if (!(Number.isInteger(v) && v > 0))
      throw new TypeError(`createSessions: ${k} must be a positive integer`);
  const now = o.now ?? Date.now;
  const { store } = o;
  const attrs = `Path=/; HttpOnly; SameSite=Strict${o.secure ? '; Secure' : ''}`;

  // Token identities per admin.tokens list, computed once per list (a reload brings a new list).
  const ids = new WeakMap<readonly HashedToken[], Array<{ t: HashedToken; id: Buffer }>>();
  const identities = () => {
    const list = o.tokens();
    let known = ids.get(list);
    if (!known) {
      known = list.map((t) => ({ t, id: tokenId(t.digest) }));
      ids.set(list, known);
    }
    return known;
  };
  /** The session's principal under the tokens in force, or null when its token is gone. */
  const principalOf = (row: Row): Principal | null => {
    const list = identities();
    if (row.token_id === null)
      // A loopback session (no admin.tokens at login) stays valid only while none is configured.
      return list.length === 0 && ROLES.includes(row.role)
        ? { name: row.name, role: row.role as AdminRole }
        : null;
    const stored = Buffer.from(row.token_id, 'base64url');
    let found: HashedToken | null = null;
    // Every entry is compared: the time taken says nothing about which one matched.
    for (const { t, id } of list) if (stored.length === id.length && timingSafeEqual(stored, id)) found = t;
    return found ? { name: found.name, role: found.role } : null;
  };

  const endById = (key: string) => store.execute('DELETE FROM console_sessions WHERE id_hash = ?', [key]);

  /** The request's live session row (expired or orphaned ones are deleted on the way). */
  const find = async (
    req: IncomingMessage,
  ): Promise<{ key: string; row: Row; principal: Principal } | null> => {
    const id = cookieOf(req.headers.cookie, SESSION_COOKIE);
    if (!id || id.length > 128) return null;
    const key = hashId(id);
    const [row] = await store.query<Row>(
      'SELECT csrf, name, role, token_id, created_ms, seen_ms FROM console_sessions WHERE id_hash = ?',
      [key],
    );
    if (!row) return null;
    const t = now();
    const principal =
      t - Number(row.seen_ms) > o.idleMs || t - Number(row.created_ms) > o.maxAgeMs ? null : principalOf(row);
    if (!principal) {
      await endById(key);
      return null;
    }
    return { key, row, principal };
  };

  const purge = async () => {
    const t = now();
    const r = await store.execute('DELETE FROM console_sessions WHERE seen_ms < ? OR created_ms < ?', [
      t - o.idleMs,
      t - o.maxAgeMs,
    ]);
    return r.rowCount;
  };
  const timer = setInterval(() => {
    purge().catch((err) => o.onError?.(err));
  }, purgeMs);
  timer.unref();

  return {
    async create(principal) {
      const id = randomBytes(32).toString('base64url');
      const csrf = randomBytes(24).toString('base64url');
      const t = now();
      const entry = identities().find((e) => e.t.name === principal.name);
      await purge();
      const [count] = await store.query<{ n: number }>('SELECT count(*) AS n FROM console_sessions');
      const over = Number(count?.n ?? 0) - o.maxSessions + 1;
      if (over > 0)
        // Least recently used first (last use is as exact as touchMs).
        await store.execute(
          'DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions ORDER BY seen_ms, created_ms LIMIT ?)',
          [over],
        );
      await store.execute(
        'INSERT INTO console_sessions (id_hash, csrf, name, role, token_id, created_ms, seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
          hashId(id),
          csrf,
          principal.name,
          principal.role,
          entry ? entry.id.toString('base64url') : null,
          t,
          t,
        ],
      );
      const maxAge = Math.floor(o.maxAgeMs / 1000);
      return { setCookie: `${SESSION_COOKIE}=${id}; ${attrs}; Max-Age=${maxAge}`, csrf };
    },
    async resolve(req, mutating) {
      const found = await find(req);
      if (!found) return null;
      const { key, row, principal } = found;
      if (!sameOrigin(req))
        throw new KapokError(
          'KAPOK_HTTP_CSRF',
          'the console session cookie is accepted from the console own origin only (Origin differs from Host)',
        );
      if (mutating) {
        const sent = Buffer.from(String(req.headers[CSRF_HEADER] ?? ''), 'base64url');
        const want = Buffer.from(row.csrf, 'base64url');
        if (sent.length !== want.length || !timingSafeEqual(sent, want))
          throw new KapokError(
            'KAPOK_HTTP_CSRF',
            `a change made with the console session cookie needs the session's CSRF token in ${CSRF_HEADER} (GET /console/api/session gives it)`,
          );
      }
      const t = now();
      // Throttled: one write per session per touchMs, not one per request.
      if (t - Number(row.seen_ms) >= touchMs)
        await store.execute('UPDATE console_sessions SET seen_ms = ? WHERE id_hash = ?', [t, key]);
      return principal;
    },
    async current(req) {
      const found = await find(req);
      return found ? { principal: found.principal, csrf: found.row.csrf } : null;
    },
    async destroy(req) {
      const id = cookieOf(req.headers.cookie, SESSION_COOKIE);
      if (id && id.length <= 128) await endById(hashId(id));
      return `${SESSION_COOKIE}=; ${attrs}; Max-Age=0`;
    },
    async prune() {
      const keep = identities().map((e) => e.id.toString('base64url'));
      // Loopback sessions (token_id NULL) end once any token is configured.
      const sql = keep.length
        ? `DELETE FROM console_sessions WHERE token_id IS NULL OR token_id NOT IN (${keep.map(() => '?').join(', ')})`
        : 'DELETE FROM console_sessions WHERE token_id IS NOT NULL';
      return (await store.execute(sql, keep)).rowCount;
    },
    purge,
    close() {
      clearInterval(timer);
    },
  };
}
