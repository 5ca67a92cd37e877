import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { KapokError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { GATEWAY_MIGRATIONS } from '../../src/gateway/migrations.js';
import {
  chunkRows,
  MAX_ROWS_PER_INSERT,
  type UsageRecord,
  UsageRecorder,
} from '../../src/gateway/usage/recorder.js';
import type { Queryable, SqlValue, Store } from '../../src/ports/store.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

const rec = (i: number): UsageRecord => ({
  ts: 1_700_000_000_000 + i,
  subject: `key:${i % 7}`,
  model: 'qwen',
  target: 'mock/m',
  promptTokens: i,
  completionTokens: 1,
  latencyMs: 3,
  status: 200,
  stream: i % 2 === 0,
});

/** A real SQLite store whose executes are seen (SQL text) and can be made to fail once, on the nth call. */
async function watchedStore(): Promise<{
  store: Store;
  real: Store;
  sqls: string[];
  failAt: { n: number };
}> {
  const real = await createSqliteStore({ file: `${tmpDir('kapok-usage-rec-')}/u.db` });
  await real.migrate(GATEWAY_MIGRATIONS);
  const sqls: string[] = [];
  const failAt = { n: -1 };
  const watch = (q: Queryable) => (sql: string, params?: readonly SqlValue[]) => {
    if (sqls.length === failAt.n) {
      failAt.n = -1;
      return Promise.reject(new KapokError('KAPOK_STORE_UNAVAILABLE', 'disk gone (test)'));
    }
    sqls.push(sql);
    return q.execute(sql, params);
  };
  // The recorder only executes in transactions; the rest of the port is not used here.
  const store = {
    execute: watch(real),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      real.transaction((tx) => fn({ execute: watch(tx), query: (sql, params) => tx.query(sql, params) })),
  } as unknown as Store;
  return { store, real, sqls, failAt };
}

const rows = (store: Store) =>
  store.query<{ prompt_tokens: number }>('SELECT prompt_tokens FROM gateway_usage ORDER BY prompt_tokens');

describe('gateway usage recorder', () => {
  it('splits any length into INSERTs of power-of-two row counts up to the cap', () => {
    for (let left = 1; left <= 1000; left++) {
      const n = chunkRows(left);
      assert.ok(n >= 1 && n <= left && n <= MAX_ROWS_PER_INSERT, `left ${left}: ${n}`);
      assert.equal(n & (n - 1), 0, `left ${left}: ${n} is not a power of two`);
    }
  });

  it('writes batches of every length through at most 7 statement shapes, every record once', async () => {
    const { store, real, sqls } = await watchedStore();
    const logs = captureLogs();
    const r = new UsageRecorder({
      store,
      logger: createLogger({ level: 'warn', destination: logs }),
      flushIntervalMs: 60_000,
      batchSize: 500,
      maxQueue: 100_000,
    });
    let i = 0;
    // Flushes of 1..120 records: before, each length was its own INSERT (its own cached statement).
    for (let len = 1; len <= 120; len++) {
      for (let k = 0; k < len; k++) r.record(rec(i++));
      await r.flush();
    }
    const got = await rows(real);
    assert.equal(got.length, i);
    assert.deepEqual(
      got.map((x) => Number(x.prompt_tokens)),
      Array.from({ length: i }, (_, k) => k),
    );
    const shapes = new Set(sqls.filter((q) => q.startsWith('INSERT INTO gateway_usage ')));
    assert.ok(shapes.size <= 7, `${shapes.size} distinct INSERTs`);
    const upserts = new Set(sqls.filter((q) => q.startsWith('INSERT INTO gateway_usage_minutes ')));
    assert.ok(upserts.size >= 1 && upserts.size <= 7, `${upserts.size} distinct UPSERTs`);
    assert.equal(shapes.size + upserts.size, new Set(sqls).size);
    assert.equal(r.pending, 0);
    assert.equal(logs.lines.length, 0);
  });

  it('a failed write puts only the unwritten rest back; the next flush writes it, nothing twice', async () => {
    const { store, real, failAt } = await watchedStore();
    const logs = captureLogs();
    const r = new UsageRecorder({
      store,
      logger: createLogger({ level: 'warn', destination: logs }),
      flushIntervalMs: 60_000,
      batchSize: 500,
      maxQueue: 100_000,
    });
    for (let i = 0; i < 200; i++) r.record(rec(i));
    // Statements: the first 64 rows' INSERT, their 7 subjects' per-minute sums in UPSERTs of 4, 2
    // and 1 rows, then the next INSERT (4) and its first UPSERT (5), which fails: its transaction,
    // INSERT included, rolls back, so the raw rows and the per-minute sums still agree.
    failAt.n = 5;
    await r.flush();
    assert.equal((await rows(real)).length, MAX_ROWS_PER_INSERT);
    assert.equal(await minuteRequests(real), MAX_ROWS_PER_INSERT);
    assert.equal(r.pending, 200 - MAX_ROWS_PER_INSERT);
    assert.equal(logs.lines[0]?.msg, 'usage write failed; will retry');
    assert.equal(logs.lines[0]?.records, 200 - MAX_ROWS_PER_INSERT);
    await r.flush();
    const got = await rows(real);
    assert.deepEqual(
      got.map((x) => Number(x.prompt_tokens)),
      Array.from({ length: 200 }, (_, k) => k),
    );
    assert.equal(await minuteRequests(real), 200);
  });
});

const minuteRequests = async (store: Store) =>
  Number((await store.query<{ n: unknown }>('SELECT SUM(requests) AS n FROM gateway_usage_minutes'))[0]?.n);
