/**
 * Event-loop stalls from the SQLite store's WAL checkpoints, measured on the gateway's own write
 * path: the UsageRecorder writes usage rows into the gateway's tables in a temporary file at a fixed
 * rate, while perf_hooks.monitorEventLoopDelay samples the loop and every store.execute() is timed.
 * Not part of `npm run bench` (it starts no Kapok); run it alone, before and after a store change:
 *
 *   node --import tsx bench/sqlite-wal.ts                       # this tree's store
 *   KAPOK_BENCH_STORE_MODULE=/other/tree/src/adapters/sqlite/store.ts node --import tsx bench/sqlite-wal.ts
 *
 * KAPOK_BENCH_WAL_ROWS (default 100,000) rows at KAPOK_BENCH_WAL_RATE rows/s (default 5,000) over
 * KAPOK_BENCH_WAL_SUBJECTS keys (default 1). Prints
 * one JSON line: loop delay p50/p99/max, the slowest INSERTs, how many took over 5 ms, and the WAL
 * file's size at the end (a checkpointer that never ran would leave it growing with the rows).
 * Baseline: none; the figure to compare is the same script against the other store, same machine.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { GATEWAY_MIGRATIONS } from '../src/gateway/migrations.js';
import { UsageRecorder } from '../src/gateway/usage/recorder.js';
import type { SqlValue, Store } from '../src/ports/store.js';

const rows = Number(process.env.KAPOK_BENCH_WAL_ROWS ?? 100_000);
const rate = Number(process.env.KAPOK_BENCH_WAL_RATE ?? 5_000);
// API keys the rows spread over: 1 like the gateway bench; many spread each INSERT over many index pages.
const subjects = Number(process.env.KAPOK_BENCH_WAL_SUBJECTS ?? 1);
const modulePath = resolve(process.env.KAPOK_BENCH_STORE_MODULE ?? 'src/adapters/sqlite/store.ts');
const { createSqliteStore } = (await import(pathToFileURL(modulePath).href)) as {
  createSqliteStore: (o: {
    file: string;
    checkpointIntervalMs?: number;
    onCheckpoint?: (c: { mode: string }) => void;
  }) => Promise<Store>;
};

const dir = mkdtempSync(join(tmpdir(), 'kapok-bench-wal-'));
const file = join(dir, 'kapok.db');
/** Checkpoints by mode, where the store reports them (a store without a checkpoint worker does not). */
const checkpoints: Record<string, number> = {};
const store = await createSqliteStore({
  file,
  // The checkpoint worker's interval (KAPOK_BENCH_WAL_INTERVAL, 0 = SQLite's own; stores without it ignore it).
  checkpointIntervalMs: Number(process.env.KAPOK_BENCH_WAL_INTERVAL ?? 250),
  onCheckpoint: (c) => {
    checkpoints[c.mode] = (checkpoints[c.mode] ?? 0) + 1;
  },
});
await store.migrate(GATEWAY_MIGRATIONS);

const slow: number[] = [];
let over5 = 0;
let insertMsTotal = 0;
let walMaxBytes = 0;
const walSize = () => (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0);
/** Every write the recorder makes, timed: one transaction per batch since the usage rollup (the
 * commit is where SQLite's own checkpoint runs). A Proxy, not Object.create: the store's private
 * fields need the store itself as `this` (with Object.create every write threw, the noop logger
 * swallowed it, and the bench measured nothing). */
const time = async <T>(run: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const r = await run();
  const ms = performance.now() - t0;
  if (ms > 5) over5++;
  insertMsTotal += ms;
  slow.push(ms);
  if (slow.length > 2_000) slow.sort((a, b) => b - a).splice(20);
  return r;
};
const timed = new Proxy(store, {
  get(target, prop) {
    if (prop === 'execute')
      return (sql: string, params?: readonly SqlValue[]) => time(() => target.execute(sql, params));
    if (prop === 'transaction')
      return (fn: Parameters<Store['transaction']>[0]) => time(() => target.transaction(fn));
    const v = Reflect.get(target, prop, target);
    return typeof v === 'function' ? v.bind(target) : v;
  },
}) as Store;

const noop = () => {};
const logger = { warn: noop, info: noop, error: noop, debug: noop } as never;
const recorder = new UsageRecorder({
  store: timed,
  logger,
  // The gateway's defaults (gateway.usage in src/gateway/config.ts).
  flushIntervalMs: 1000,
  batchSize: 500,
  maxQueue: 100_000,
});
recorder.start();

const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const t0 = performance.now();
let sent = 0;
await new Promise<void>((done) => {
  const tick = setInterval(() => {
    const due = Math.min(rows, Math.floor(((performance.now() - t0) / 1000) * rate));
    for (; sent < due; sent++) {
      recorder.record({
        ts: Date.now(),
        subject: `key-${sent % subjects}`,
        model: 'gpt-4o-mini',
        target: 'openai/gpt-4o-mini',
        promptTokens: 12,
        completionTokens: 34,
        latencyMs: 5,
        status: 200,
        stream: false,
      });
    }
    walMaxBytes = Math.max(walMaxBytes, walSize());
    if (sent >= rows) {
      clearInterval(tick);
      done();
    }
  }, 1);
});
await recorder.stop();
eld.disable();
const seconds = (performance.now() - t0) / 1000;
const walEndBytes = walSize();
const stored = Number((await store.query('SELECT COUNT(*) AS n FROM gateway_usage'))[0]?.n ?? 0);
await store.close();
if (stored !== rows) {
  console.error(`sqlite-wal: ${stored} of ${rows} usage rows were stored: the figures would measure nothing`);
  process.exit(1);
}
rmSync(dir, { recursive: true, force: true });

const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100;
slow.sort((a, b) => b - a);
console.log(
  JSON.stringify({
    store: modulePath,
    rows,
    ratePerS: rate,
    subjects,
    seconds: Math.round(seconds * 10) / 10,
    loopDelayMs: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) },
    slowestInsertsMs: slow.slice(0, 5).map((v) => Math.round(v * 10) / 10),
    insertsOver5ms: over5,
    insertMsTotal: Math.round(insertMsTotal),
    walMaxMB: Math.round((walMaxBytes / 2 ** 20) * 10) / 10,
    walEndMB: Math.round((walEndBytes / 2 ** 20) * 10) / 10,
    checkpoints,
  }),
);
