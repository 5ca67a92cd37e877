import { KapokError } from '../core/errors.js';
import type { Queryable, Store } from '../ports/store.js';
import { ACTIVE, type OpRow, TX_STATES, type TxRow, txView } from './rows.js';

/**
 * What people do with transactions, on the Store alone, so `kapok saga …` works with or without a
 * running coordinator: a coordinator picks the change up at its next poll (next_at is set to now).
 */

export interface ListQuery {
  /** A state, or `retrying`: active transactions with an operation waiting to be called again. */
  state?: string;
  limit: number;
  /** Created before this gid's row (keyset paging, newest first). */
  after?: string;
}

export const LIST_STATES = [...TX_STATES, 'retrying'] as const;

export async function listTransactions(
  store: Store,
  q: ListQuery,
): Promise<{ transactions: unknown[]; next: string | null }> {
  if (q.state !== undefined && !(LIST_STATES as readonly string[]).includes(q.state))
    throw new KapokError('KAPOK_SAGA_INVALID', `state: expected one of ${LIST_STATES.join(', ')}`);
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (q.state === 'retrying') {
    where.push(`t.state IN ('${ACTIVE.join("','")}')`);
    where.push(
      `EXISTS (SELECT 1 FROM saga_op o WHERE o.gid = t.gid AND o.state IN ('pending', 'calling') AND o.attempts > 0)`,
    );
  } else if (q.state) {
    where.push('t.state = ?');
    params.push(q.state);
  }
  if (q.after) {
    const [c] = await store.query<{ created_at: number }>('SELECT created_at FROM saga_tx WHERE gid = ?', [
      q.after,
    ]);
    if (!c)
      throw new KapokError(
        'KAPOK_SAGA_INVALID',
        'cursor: not a cursor this API returned (pass `next` unchanged)',
      );
    where.push('(t.created_at < ? OR (t.created_at = ? AND t.gid < ?))');
    params.push(Number(c.created_at), Number(c.created_at), q.after);
  }
  const rows = await store.query<TxRow>(
    `SELECT * FROM saga_tx t ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY t.created_at DESC, t.gid DESC LIMIT ?`,
    [...params, q.limit + 1],
  );
  const page = rows.slice(0, q.limit);
  return {
    transactions: page.map((t) => txView(t)),
    next: rows.length > q.limit ? (page.at(-1)?.gid ?? null) : null,
  };
}

async function load(q: Queryable, gid: string): Promise<{ tx: TxRow; ops: OpRow[] }> {
  const [tx] = await q.query<TxRow>('SELECT * FROM saga_tx WHERE gid = ?', [gid]);
  if (!tx)
    throw new KapokError('KAPOK_SAGA_NOT_FOUND', `no transaction ${gid}: check the gid (kapok saga list)`);
  const ops = await q.query<OpRow>('SELECT * FROM saga_op WHERE gid = ? ORDER BY stage, branch, op', [gid]);
  return { tx, ops };
}

export async function showTransaction(store: Store, gid: string): Promise<Record<string, unknown>> {
  const { tx, ops } = await load(store, gid);
  const dead = await store.query(
    'SELECT id, branch, op, reason, created_at, resolved_at, resolution FROM saga_dead WHERE gid = ? ORDER BY created_at',
    [gid],
  );
  return { ...txView(tx, ops), deadLetters: dead.map(deadView) };
}

/** The phase a transaction returns to when its dead operation is retried or skipped. */
function phaseState(op: OpRow): string {
  if (op.phase === 'confirm') return 'confirming';
  if (op.phase === 'backward') return 'compensating';
  if (op.phase === 'query') return 'prepared';
  return 'running';
}

function pick(ops: OpRow[], branch?: string, op?: string): OpRow[] {
  const dead = ops.filter(
    (o) => o.state === 'dead' && (!branch || o.branch === branch) && (!op || o.op === op),
  );
  if ((branch || op) && !ops.some((o) => (!branch || o.branch === branch) && (!op || o.op === op)))
    throw new KapokError(
      'KAPOK_SAGA_NOT_FOUND',
      `no operation ${branch ?? '*'}/${op ?? '*'} in this transaction: see kapok saga show`,
    );
  return dead;
}

/** Dead operations (all, or one) are called again from attempt 0; the transaction resumes its phase. */
export async function retryTransaction(
  store: Store,
  gid: string,
  branch?: string,
  op?: string,
): Promise<Record<string, unknown>> {
  return resolve(store, gid, branch, op, 'retried');
}

/** A person did by hand what a dead operation should have: it counts as done. */
export async function skipOperation(
  store: Store,
  gid: string,
  branch: string,
  op: string,
): Promise<Record<string, unknown>> {
  return resolve(store, gid, branch, op, 'skipped');
}

async function resolve(
  store: Store,
  gid: string,
  branch: string | undefined,
  op: string | undefined,
  how: 'retried' | 'skipped',
): Promise<Record<string, unknown>> {
  const now = Date.now();
  await store.transaction(async (q) => {
    const { tx, ops } = await load(q, gid);
    const dead = pick(ops, branch, op);
    if (tx.state !== 'dead' && !ACTIVE.includes(tx.state))
      throw new KapokError(
        'KAPOK_SAGA_STATE',
        `transaction ${gid} is ${tx.state}: only a dead (or active) transaction's dead operations can be ${how}`,
      );
    if (dead.length === 0)
      throw new KapokError(
        'KAPOK_SAGA_STATE',
        `transaction ${gid} has no dead operation${branch ? ` ${branch}/${op ?? '*'}` : ''} to ${how === 'retried' ? 'retry' : 'skip'}`,
      );
    for (const o of dead) {
      await q.execute(
        `UPDATE saga_op SET state = ?, attempts = ?, next_at = ?, updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
        [
          how === 'retried' ? 'pending' : 'skipped',
          how === 'retried' ? 0 : Number(o.attempts),
          now,
          now,
          gid,
          o.branch,
          o.op,
        ],
      );
      await q.execute(
        `UPDATE saga_dead SET resolved_at = ?, resolution = ? WHERE gid = ? AND branch = ? AND op = ? AND resolved_at IS NULL`,
        [now, how, gid, o.branch, o.op],
      );
    }
    const first = dead[0] as OpRow;
    // A skipped query means: send it (the person checked the message should go).
    if (how === 'skipped' && first.phase === 'query')
      await q.execute(`UPDATE saga_op SET state = 'succeeded' WHERE gid = ? AND branch = ? AND op = ?`, [
        gid,
        first.branch,
        first.op,
      ]);
    if (tx.state === 'dead')
      await q.execute('UPDATE saga_tx SET state = ?, next_at = ?, updated_at = ? WHERE gid = ?', [
        phaseState(first),
        now,
        now,
        gid,
      ]);
    else await q.execute('UPDATE saga_tx SET next_at = ? WHERE gid = ?', [now, gid]);
  });
  return showTransaction(store, gid);
}

/** Undo what was done: a forward phase (running, or dead in it) or a finished saga turns to compensation. */
export async function compensateTransaction(store: Store, gid: string): Promise<Record<string, unknown>> {
  const now = Date.now();
  await store.transaction(async (q) => {
    const { tx, ops } = await load(q, gid);
    const deadForward = ops.some((o) => o.state === 'dead' && o.phase !== 'backward');
    const ok =
      tx.state === 'running' ||
      (tx.mode === 'saga' && tx.state === 'succeeded') ||
      (tx.state === 'dead' && (deadForward || ops.some((o) => o.state === 'dead' && o.phase === 'backward')));
    if (!ok || tx.mode === 'msg' || ops.some((o) => o.phase === 'confirm' && o.attempts > 0))
      throw new KapokError(
        'KAPOK_SAGA_STATE',
        `transaction ${gid} (${tx.mode}, ${tx.state}) cannot be compensated: a msg is never undone, and a tcc/eos past its confirm is decided`,
      );
    for (const o of ops) {
      if (o.phase === 'forward' && Number(o.attempts) === 0)
        await q.execute(
          `UPDATE saga_op SET state = 'skipped', updated_at = ? WHERE gid = ? AND branch = ? AND phase <> 'forward'`,
          [now, gid, o.branch],
        );
      else if (o.phase === 'forward' && o.state !== 'succeeded')
        await q.execute(
          `UPDATE saga_op SET state = 'failed', updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
          [now, gid, o.branch, o.op],
        );
      else if (o.phase === 'backward' && o.state === 'dead')
        await q.execute(
          `UPDATE saga_op SET state = 'pending', attempts = 0, next_at = ?, updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
          [now, now, gid, o.branch, o.op],
        );
    }
    await q.execute(
      `UPDATE saga_dead SET resolved_at = ?, resolution = 'compensated' WHERE gid = ? AND resolved_at IS NULL`,
      [now, gid],
    );
    await q.execute(
      `UPDATE saga_tx SET state = 'compensating', reason = ?, next_at = ?, updated_at = ? WHERE gid = ?`,
      ['compensation asked by a person', now, now, gid],
    );
  });
  return showTransaction(store, gid);
}

export async function listDeadLetters(store: Store, open: boolean, limit: number): Promise<unknown[]> {
  const rows = await store.query(
    `SELECT id, gid, branch, op, reason, created_at, resolved_at, resolution FROM saga_dead ${open ? 'WHERE resolved_at IS NULL' : ''} ORDER BY created_at DESC LIMIT ?`,
    [limit],
  );
  return rows.map(deadView);
}

function deadView(r: Record<string, unknown>): Record<string, unknown> {
  return {
    id: r.id,
    gid: r.gid,
    branch: r.branch,
    op: r.op,
    reason: r.reason,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    resolvedAt:
      r.resolved_at === null || r.resolved_at === undefined
        ? null
        : new Date(Number(r.resolved_at)).toISOString(),
    resolution: r.resolution ?? null,
  };
}
