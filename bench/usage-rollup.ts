import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';
import { GATEWAY_MIGRATIONS } from '../src/gateway/migrations.js';
import { usageSeries } from '../src/gateway/usage/series.js';
import { tempDir } from './lib.js';

/**
 * usageSeries server time over KAPOK_BENCH_USAGE_ROWS (1,000,000) usage rows on SQLite, the console's
 * query (24 h, 48 buckets, by model): from the per-minute sums against the raw rows in the same run,
 * so the ratio holds on a busy machine. Rows as bench/console.ts writes them (5 models, 50 keys, 2%
 * errors), then the 0002 migration back-fills the sums (its time is reported too).
 * Run: npm run bench -- usage-rollup, or node --import tsx bench/usage-rollup.ts (no build needed).
 */
export async function usageRollupBench() {
  const t = tempDir();
  const file = join(t.dir, 'kapok.db');
  const rows = Number(process.env.KAPOK_BENCH_USAGE_ROWS ?? 1_000_000);
  const runs = Number(process.env.KAPOK_BENCH_USAGE_RUNS ?? 100);
  let store = await createSqliteStore({ file });
  await store.migrate(GATEWAY_MIGRATIONS.slice(0, 1));
  await store.close();
  const db = new Database(file);
  const now = Date.now();
  const insert = db.prepare(
    `INSERT INTO gateway_usage (ts, subject, model, target, prompt_tokens, completion_tokens, latency_ms, status, stream)
     VALUES (?, ?, ?, 'up/m', ?, 5, 20, ?, 0)`,
  );
  db.transaction(() => {
    for (let i = 0; i < rows; i++)
      insert.run(
        now - 86_400_000 + Math.floor((i * 86_390_000) / rows),
        `key:k${i % 50}`,
        `model-${i % 5}`,
        10 + (i % 7),
        i % 50 === 0 ? 502 : 200,
      );
  })();
  db.close();
  store = await createSqliteStore({ file });
  const m0 = performance.now();
  await store.migrate(GATEWAY_MIGRATIONS);
  const backfillMs = Math.round(performance.now() - m0);
  const [{ n } = { n: 0 }] = await store.query<{ n: number }>(
    'SELECT COUNT(*) AS n FROM gateway_usage_minutes',
  );
  const q = { by: 'model', buckets: '48' };
  const time = async (rollup: boolean, k: number) => {
    const xs: number[] = [];
    for (let i = 0; i < k; i++) {
      const s = performance.now();
      await usageSeries(store, q, now, { rollup });
      xs.push(performance.now() - s);
    }
    xs.sort((a, b) => a - b);
    const at = (p: number) => Math.round((xs[Math.floor(p * (xs.length - 1))] as number) * 10) / 10;
    return { p50: at(0.5), p99: at(0.99), n: k };
  };
  const raw = await time(false, Math.max(5, Math.floor(runs / 10)));
  const minutes = await time(true, runs);
  const a = await usageSeries(store, q, now, { rollup: true });
  await store.close();
  t.remove();
  return {
    rows,
    minuteRows: Number(n),
    backfillMs,
    totalsRequests: a.totals.requests,
    raw,
    minutes,
    ratioP50: Math.round((raw.p50 / minutes.p50) * 10) / 10,
    targets: { minutesP99Under100ms: minutes.p99 <= 100 },
  };
}

if (import.meta.url === `file://${process.argv[1]}`)
  console.log(JSON.stringify(await usageRollupBench(), null, 2));
