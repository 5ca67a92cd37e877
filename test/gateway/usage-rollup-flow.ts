import assert from 'node:assert/strict';
import { createLogger } from '../../src/core/log.js';
import { GATEWAY_MIGRATIONS } from '../../src/gateway/migrations.js';
import { type UsageRecord, UsageRecorder } from '../../src/gateway/usage/recorder.js';
import { type UsageSeries, usageSeries } from '../../src/gateway/usage/series.js';
import type { Store } from '../../src/ports/store.js';
import { captureLogs } from '../helpers/logs.js';

/**
 * The per-minute sums (gateway_usage_minutes) against the raw rows, on any Store: random records
 * written before the 0002 migration (back-filled) and after it through the UsageRecorder (kept up to
 * date), then random minute-aligned ranges where usageSeries from the sums must equal usageSeries
 * from the raw rows, field for field. Seeded: a failure names its seed.
 */
const T0 = Date.parse('2026-11-27T00:00:00Z');
const MINUTE = 60_000;
const SPAN = 6 * 3600_000;
const MODELS = ['qwen', 'glm', 'deepseek', 'yi'];
const STATUS = [200, 200, 200, 200, 429, 502];
const BY = ['model', 'key', 'status', 'target'];

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function rollupFlow(store: Store, seed = Date.now() % 1_000_000): Promise<void> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)] as T;
  const record = (): UsageRecord => ({
    ts: T0 + Math.floor(r() * SPAN),
    subject: `key:k${Math.floor(r() * 5)}`,
    model: pick(MODELS),
    target: pick(['up/a', 'up/b']),
    promptTokens: Math.floor(r() * 500),
    completionTokens: Math.floor(r() * 200),
    latencyMs: 5,
    status: pick(STATUS),
    stream: false,
  });
  const msg = `seed ${seed}`;

  await store.migrate(GATEWAY_MIGRATIONS.slice(0, 1));
  for (let i = 0; i < 15; i++) {
    const xs = Array.from({ length: 100 }, record);
    await store.execute(
      `INSERT INTO gateway_usage (ts, subject, model, target, prompt_tokens, completion_tokens, latency_ms, status, stream)
       VALUES ${xs.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, 0)').join(', ')}`,
      xs.flatMap((x) => [
        x.ts,
        x.subject,
        x.model,
        x.target,
        x.promptTokens,
        x.completionTokens,
        x.latencyMs,
        x.status,
      ]),
    );
  }
  await store.migrate(GATEWAY_MIGRATIONS);

  const logs = captureLogs();
  const rec = new UsageRecorder({
    store,
    logger: createLogger({ level: 'warn', destination: logs }),
    flushIntervalMs: 60_000,
    batchSize: 300,
    maxQueue: 100_000,
  });
  for (let i = 0; i < 1500; i++) rec.record(record());
  await rec.stop();
  assert.equal(logs.lines.length, 0, logs.text());

  // The table itself: every (minute, model, subject, target, status) sum equals the raw rows'.
  const raw = await store.query(
    `SELECT (ts / 60000) * 60000 AS minute, model, subject, target, status, COUNT(*) AS requests,
       SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, SUM(prompt_tokens + completion_tokens) AS tokens
     FROM gateway_usage GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
  );
  const sums = await store.query(
    `SELECT minute, model, subject, target, status, requests, errors, tokens
     FROM gateway_usage_minutes ORDER BY 1, 2, 3, 4, 5`,
  );
  const norm = (rows: Record<string, unknown>[]) =>
    rows.map((x) => Object.values(x).map((v) => (typeof v === 'string' ? v : Number(v))));
  assert.ok(raw.length > 1000, msg);
  assert.deepEqual(norm(sums), norm(raw), msg);

  // usageSeries: minute-aligned ranges whose step is whole minutes give the same answer both ways.
  const strip = ({ source, ...rest }: UsageSeries) => rest;
  for (let i = 0; i < 25; i++) {
    const from = T0 - 30 * MINUTE + Math.floor(r() * (SPAN / MINUTE)) * MINUTE;
    const step = pick([1, 2, 5, 7, 15, 60]) * MINUTE;
    const buckets = 1 + Math.floor(r() * 60);
    const q = {
      from: String(from),
      to: String(from + buckets * step),
      buckets: String(buckets),
      by: pick(BY),
      top: String(1 + Math.floor(r() * 6)),
    };
    const fast = await usageSeries(store, q, T0);
    const slow = await usageSeries(store, q, T0, { rollup: false });
    assert.equal(fast.source, 'minutes', msg);
    assert.equal(slow.source, 'records', msg);
    assert.deepEqual(strip(fast), strip(slow), `${msg}: ${JSON.stringify(q)}`);
  }

  // A range off the minute: from snaps down, to up, and the answer says so.
  const odd = await usageSeries(
    store,
    { from: String(T0 + 17_000), to: String(T0 + 3600_000 - 5), buckets: '7' },
    T0,
  );
  assert.equal(odd.source, 'minutes');
  assert.equal(odd.from, new Date(T0).toISOString());
  assert.equal(odd.to, new Date(T0 + 3600_000).toISOString());
  assert.equal(odd.stepMs, 9 * MINUTE);
  assert.ok(odd.times.every((t) => t % MINUTE === 0));
  const exact = await usageSeries(store, { from: String(T0), to: String(T0 + 3600_000), buckets: '7' }, T0, {
    rollup: false,
  });
  assert.deepEqual(odd.totals, exact.totals, msg);

  // Steps under a minute read the raw rows over the exact range.
  const fine = await usageSeries(
    store,
    { from: String(T0 + 17_000), to: String(T0 + 617_000), buckets: '20' },
    T0,
  );
  assert.equal(fine.source, 'records');
  assert.equal(fine.stepMs, 30_000);
  assert.equal(fine.from, new Date(T0 + 17_000).toISOString());
}
