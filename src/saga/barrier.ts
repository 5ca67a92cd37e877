/**
 * The branch barrier (`kapok/saga-barrier`, docs/saga.md#barrier): for a Node service taking part in
 * Kapok sagas, on PostgreSQL or SQLite. Call `barrier(tx, headers, op, fn)` inside the service's own
 * database transaction, with the coordinator's X-Kapok-Saga-* headers; the barrier inserts a row
 * keyed (gid, branch, op) in that same transaction, so the row and the business change commit or
 * roll back together:
 * - a repeated call (the coordinator retries after a lost answer) finds its row: `duplicate`, fn is
 *   not run again, answer success;
 * - a compensation (compensate, cancel, rollback) whose action never ran first inserts the action's
 *   row for it: `null-compensation`, fn not run, answer success;
 * - an action arriving after that (it was delayed past its compensation) finds the row: `hanging`,
 *   fn not run; answer 409 so the coordinator never counts it as done (it is compensating anyway).
 * The helper imports no database client: it takes anything with `execute(sql, params)` returning a
 * row count, with `?` placeholders (Kapok's Store handle), or wrap pg / better-sqlite3 with
 * `pgExecutor` / `sqliteExecutor` below.
 */

export interface BarrierDb {
  execute(sql: string, params: readonly (string | number)[]): Promise<{ rowCount: number }>;
}

export type BarrierOutcome = 'executed' | 'duplicate' | 'null-compensation' | 'hanging';

/** The action each compensating operation undoes. */
export const COMPENSATES: Readonly<Record<string, string>> = {
  compensate: 'action',
  cancel: 'try',
  rollback: 'prepare',
};

/** The barrier's table, for the branch service's own database (same SQL on both dialects). */
export const BARRIER_TABLE_SQL = `CREATE TABLE IF NOT EXISTS saga_barrier (
  gid TEXT NOT NULL,
  branch TEXT NOT NULL,
  op TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (gid, branch, op)
)`;

export interface BarrierKey {
  gid: string;
  branch: string;
  op: string;
}

const ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The key from the coordinator's headers (any header object); throws naming a missing or bad one. */
export function barrierKey(headers: Readonly<Record<string, string | string[] | undefined>>): BarrierKey {
  const get = (n: string) => {
    const v = headers[n] ?? headers[n.toLowerCase()];
    if (typeof v !== 'string' || !ID.test(v))
      throw new BarrierError(`header ${n} missing or malformed: is this call from a Kapok saga coordinator?`);
    return v;
  };
  return { gid: get('x-kapok-saga-gid'), branch: get('x-kapok-saga-branch'), op: get('x-kapok-saga-op') };
}

export class BarrierError extends Error {
  override readonly name = 'BarrierError';
}

const insert =
  'INSERT INTO saga_barrier (gid, branch, op, reason, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING';

/**
 * Runs fn at most once per (gid, branch, op) inside the caller's transaction `tx`. fn throwing rolls
 * the caller's transaction back (and the barrier row with it), so a retry runs fn again.
 */
export async function barrier<T>(
  tx: BarrierDb,
  key: BarrierKey,
  fn: () => Promise<T>,
): Promise<{ outcome: BarrierOutcome; result?: T }> {
  const now = Date.now();
  const origin = COMPENSATES[key.op];
  if (origin) {
    // Take the action's place first: if it was never done, it never will be (hanging refused).
    const r = await tx.execute(insert, [key.gid, key.branch, origin, key.op, now]);
    if (r.rowCount === 1) {
      await tx.execute(insert, [key.gid, key.branch, key.op, key.op, now]);
      return { outcome: 'null-compensation' };
    }
  }
  const r = await tx.execute(insert, [key.gid, key.branch, key.op, key.op, now]);
  if (r.rowCount === 0) {
    if (origin) return { outcome: 'duplicate' };
    // The row is ours from an earlier call, or a compensation's placeholder: which one?
    return { outcome: (await placeholder(tx, key)) ? 'hanging' : 'duplicate' };
  }
  return { outcome: 'executed', result: await fn() };
}

async function placeholder(tx: BarrierDb, key: BarrierKey): Promise<boolean> {
  // A row whose reason is not the op itself was written by a compensation for it.
  const r = await tx.execute(
    'UPDATE saga_barrier SET created_at = created_at WHERE gid = ? AND branch = ? AND op = ? AND reason <> op',
    [key.gid, key.branch, key.op],
  );
  return r.rowCount > 0;
}

/** The HTTP answer for an outcome: 200 for executed/duplicate/null-compensation, 409 for hanging. */
export function barrierStatus(outcome: BarrierOutcome): 200 | 409 {
  return outcome === 'hanging' ? 409 : 200;
}

/** The body to answer with: {outcome}, or Kapok's error shape with KAPOK_SAGA_BARRIER_HANGING. */
export function barrierBody(outcome: BarrierOutcome, key: BarrierKey): Record<string, unknown> {
  if (outcome !== 'hanging') return { outcome };
  return {
    error: {
      code: 'KAPOK_SAGA_BARRIER_HANGING',
      message: `${key.gid}/${key.branch}/${key.op} arrived after its compensation: not applied`,
    },
  };
}

/** A pg Client or PoolClient (inside BEGIN … COMMIT) as a BarrierDb: `?` becomes `$n`. */
export function pgExecutor(client: {
  query(sql: string, params: unknown[]): Promise<{ rowCount: number | null }>;
}): BarrierDb {
  return {
    async execute(sql, params) {
      let i = 0;
      const r = await client.query(
        sql.replace(/\?/g, () => `$${++i}`),
        [...params],
      );
      return { rowCount: r.rowCount ?? 0 };
    },
  };
}

/** A better-sqlite3 Database (inside db.transaction or BEGIN … COMMIT) as a BarrierDb. */
export function sqliteExecutor(db: {
  prepare(sql: string): { run(...p: unknown[]): { changes: number } };
}): BarrierDb {
  return { execute: async (sql, params) => ({ rowCount: db.prepare(sql).run(...params).changes }) };
}
