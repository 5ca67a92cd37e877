import type { FastifyInstance } from 'fastify';
import { KapokError } from '../core/errors.js';
import type { AdminGuard, RouteRoles } from '../core/http/admin-auth.js';
import { toHex } from '../crypto/bytes.js';
import type { Store } from '../ports/store.js';
import { CHECKPOINT_DOMAIN, CHECKPOINT_SM2_ID } from './chain.js';
import { publicKeys } from './keys.js';
import { type AuditQuery, queryEntries, verifyStore } from './reader.js';

/**
 * /api/audit: reading the trail (role viewer) and its public key (public). Nothing writes through
 * HTTP: entries come only from the acts themselves.
 */
export const AUDIT_ADMIN_ROLES: RouteRoles = {
  'GET /': 'viewer',
  'GET /verify': 'viewer',
  'GET /public-key': 'public',
};

export interface AuditRouteDeps {
  store: Store;
  admin: AdminGuard;
  maxLimit: number;
  maxRangeDays: number;
}

const DEFAULT_LIMIT = 100;

export async function auditRoutes(app: FastifyInstance, d: AuditRouteDeps): Promise<void> {
  d.admin.hook(app, AUDIT_ADMIN_ROLES);

  app.get('/', async (req) => {
    const q = parseQuery(req.query as Record<string, unknown>, d.maxLimit, d.maxRangeDays);
    const page = await queryEntries(d.store, q);
    return { entries: page.entries, next: page.next === null ? null : encodeCursor(page.next) };
  });

  app.get('/verify', async () => verifyStore(d.store));

  app.get('/public-key', async () => {
    const keys = await publicKeys(d.store);
    return {
      algorithm: 'SM2',
      sm2Id: CHECKPOINT_SM2_ID,
      hash: 'SM3',
      checkpointDomain: CHECKPOINT_DOMAIN,
      keys: [...keys].map(([id, k]) => ({ id, publicKey: toHex(k) })),
    };
  });
}

export const encodeCursor = (seq: number) => Buffer.from(`s${seq}`, 'utf8').toString('base64url');

function bad(msg: string): KapokError {
  return new KapokError('KAPOK_AUDIT_BAD_QUERY', msg);
}

function time(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw bad(`${name}: give it once`);
  const ms = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw bad(`${name}: expected an ISO-8601 time (2026-01-31T08:00:00Z) or milliseconds since 1970`);
  return ms;
}

function text(v: unknown, name: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || v.length > 200)
    throw bad(`${name}: expected one value of at most 200 characters`);
  return v;
}

/** The listing's query string, checked; anything malformed is a 400 naming the parameter. */
export function parseQuery(raw: Record<string, unknown>, maxLimit: number, maxRangeDays: number): AuditQuery {
  const known = new Set(['from', 'to', 'actor', 'action', 'cursor', 'limit', 'order']);
  for (const k of Object.keys(raw ?? {}))
    if (!known.has(k)) throw bad(`unknown parameter ${k}: use from, to, actor, action, cursor, limit, order`);
  const from = time(raw.from, 'from');
  const to = time(raw.to, 'to');
  if (from !== undefined && to !== undefined && to < from) throw bad('to: must not be before from');
  if (from !== undefined) {
    const span = (to ?? Date.now()) - from;
    if (span > maxRangeDays * 86_400_000)
      throw new KapokError(
        'KAPOK_AUDIT_RANGE_TOO_LARGE',
        `from..to spans more than audit.queryMaxRangeDays (${maxRangeDays} days): ask for a shorter range, or use kapok audit export`,
      );
  }
  let limit = DEFAULT_LIMIT;
  if (raw.limit !== undefined) {
    if (typeof raw.limit !== 'string' || !/^\d{1,9}$/.test(raw.limit) || Number(raw.limit) < 1)
      throw bad('limit: expected a whole number of 1 or more');
    limit = Number(raw.limit);
    if (limit > maxLimit)
      throw new KapokError(
        'KAPOK_AUDIT_RANGE_TOO_LARGE',
        `limit ${limit} is over audit.queryMaxLimit (${maxLimit}): page with cursor instead`,
      );
  }
  const order = raw.order ?? 'asc';
  if (order !== 'asc' && order !== 'desc') throw bad('order: expected asc or desc');
  let after: number | undefined;
  if (raw.cursor !== undefined) {
    const m =
      typeof raw.cursor === 'string'
        ? /^s(\d{1,16})$/.exec(Buffer.from(raw.cursor, 'base64url').toString('utf8'))
        : null;
    if (!m) throw bad('cursor: not a cursor this API returned (pass `next` unchanged)');
    after = Number(m[1]);
  }
  return {
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(text(raw.actor, 'actor') !== undefined ? { actor: raw.actor as string } : {}),
    ...(text(raw.action, 'action') !== undefined ? { action: raw.action as string } : {}),
    ...(after !== undefined ? { after } : {}),
    order,
    limit,
  };
}
