import { KapokError } from '../core/errors.js';
import type { Queryable, SqlValue } from '../ports/store.js';
import { type AuditEntry, type Checkpoint, GENESIS_HASH } from './chain.js';
import { publicKeys } from './keys.js';
import { type VerifyResult, verifyChain } from './verify.js';

/** Reading the chain back from the Store: pages for verification and export, filtered queries. */

interface EntryRow {
  seq: number | bigint;
  time: number | bigint;
  actor: string;
  ip: string | null;
  action: string;
  target: string | null;
  outcome: string;
  request_id: string | null;
  hash: string;
}

const SELECT = 'SELECT seq, time, actor, ip, action, target, outcome, request_id, hash FROM audit_log';

export const toEntry = (r: EntryRow): AuditEntry => ({
  seq: Number(r.seq),
  time: Number(r.time),
  actor: r.actor,
  ip: r.ip,
  action: r.action,
  target: r.target,
  outcome: r.outcome,
  requestId: r.request_id,
  hash: r.hash,
});

/** Entries from `from` (to `to`, inclusive) in seq order, `page` at a time (keyset, not OFFSET). */
export async function* entryPages(
  db: Queryable,
  from: number,
  page = 5000,
  to = Number.MAX_SAFE_INTEGER,
): AsyncGenerator<AuditEntry[]> {
  let next = from;
  for (;;) {
    const rows = await db.query<EntryRow>(`${SELECT} WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`, [
      next,
      to,
      page,
    ]);
    if (rows.length === 0) return;
    const entries = rows.map(toEntry);
    yield entries;
    next = (entries.at(-1) as AuditEntry).seq + 1;
    if (rows.length < page) return;
  }
}

export async function checkpoints(db: Queryable, from = 0): Promise<Checkpoint[]> {
  const rows = await db.query<{
    seq: number | bigint;
    head_hash: string;
    time: number | bigint;
    key_id: string;
    signature: string;
  }>('SELECT seq, head_hash, time, key_id, signature FROM audit_checkpoints WHERE seq >= ? ORDER BY seq', [
    from,
  ]);
  return rows.map((r) => ({
    seq: Number(r.seq),
    headHash: r.head_hash,
    time: Number(r.time),
    keyId: r.key_id,
    signature: r.signature,
  }));
}

export async function head(db: Queryable): Promise<{ seq: number; hash: string } | null> {
  const rows = await db.query<{ seq: number | bigint; hash: string }>(
    'SELECT seq, hash FROM audit_head WHERE id = 1',
  );
  return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : null;
}

/** The stored hash of entry seq (the genesis hash for 0); throws when it is missing. */
async function hashAt(db: Queryable, seq: number): Promise<string> {
  if (seq <= 0) return GENESIS_HASH;
  const rows = await db.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = ?', [seq]);
  if (!rows[0])
    throw new KapokError(
      'KAPOK_AUDIT_BAD_QUERY',
      `--from ${seq + 1}: entry ${seq} (whose hash the check starts from) is not in the log`,
    );
  return rows[0].hash;
}

/** Verifies the chain in the Store from `from` (1: all of it), with the keys in the Store. */
export async function verifyStore(db: Queryable, from = 1): Promise<VerifyResult> {
  if (!Number.isSafeInteger(from) || from < 1)
    throw new KapokError('KAPOK_AUDIT_BAD_QUERY', '--from: expected a whole number of 1 or more');
  return verifyChain({
    entries: entryPages(db, from),
    checkpoints: await checkpoints(db, from),
    keys: await publicKeys(db),
    from,
    prevHash: await hashAt(db, from - 1),
    head: await head(db),
  });
}

export interface AuditQuery {
  /** Times, ms since epoch (inclusive). */
  from?: number;
  to?: number;
  actor?: string;
  action?: string;
  /** Entries after (asc) or before (desc) this seq. */
  after?: number;
  order: 'asc' | 'desc';
  limit: number;
}

/** One page of a filtered listing; `next` is the last seq of the page when there may be more. */
export async function queryEntries(
  db: Queryable,
  q: AuditQuery,
): Promise<{ entries: AuditEntry[]; next: number | null }> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (q.from !== undefined) where.push('time >= ?') && params.push(q.from);
  if (q.to !== undefined) where.push('time <= ?') && params.push(q.to);
  if (q.actor !== undefined) where.push('actor = ?') && params.push(q.actor);
  if (q.action !== undefined) where.push('action = ?') && params.push(q.action);
  if (q.after !== undefined) where.push(q.order === 'asc' ? 'seq > ?' : 'seq < ?') && params.push(q.after);
  const rows = await db.query<EntryRow>(
    `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`,
    [...params, q.limit + 1],
  );
  const entries = rows.slice(0, q.limit).map(toEntry);
  return { entries, next: rows.length > q.limit ? (entries.at(-1) as AuditEntry).seq : null };
}
