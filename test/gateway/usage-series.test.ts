import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { isKapokError } from '../../src/core/errors.js';
import { GATEWAY_MIGRATIONS } from '../../src/gateway/migrations.js';
import { OTHER, usageRecords, usageSeries } from '../../src/gateway/usage/series.js';
import type { Store } from '../../src/ports/store.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The console's usage aggregates on a real SQLite store: totals over the whole range (not a page),
 * buckets that add up to them, the busiest groups kept and the rest summed, keyset pages that
 * cover every record once.
 */

const T0 = Date.parse('2026-11-27T00:00:00Z');
const HOUR = 3600_000;
const MODELS = ['qwen', 'glm', 'deepseek', 'yi', 'baichuan'];

describe('gateway usage series', () => {
  let store: Store;
  const dir = tmpDir('kapok-usage-series-');
  before(async () => {
    store = await createSqliteStore({ file: `${dir}/u.db` });
    // Raw rows written before the per-minute sums existed: the 0002 migration back-fills them.
    await store.migrate(GATEWAY_MIGRATIONS.slice(0, 1));
    // 1,200 records over 12 hours: model i % 5, one in ten an error, 10 + 5 tokens each.
    for (let i = 0; i < 1200; i++)
      await store.execute(
        `INSERT INTO gateway_usage (ts, subject, model, target, prompt_tokens, completion_tokens, latency_ms, status, stream)
         VALUES (?, ?, ?, 'up/m', 10, 5, 3, ?, 0)`,
        [
          T0 + Math.floor((i * 12 * HOUR) / 1200),
          `key:k${i % 3}`,
          MODELS[i % 5] as string,
          i % 10 === 0 ? 502 : 200,
        ],
      );
    await store.migrate(GATEWAY_MIGRATIONS);
  });
  after(() => store.close());

  it('totals the whole range and buckets that add up to the totals', async () => {
    const s = await usageSeries(store, { from: String(T0), to: String(T0 + 12 * HOUR), buckets: '12' }, T0);
    assert.equal(s.stepMs, HOUR);
    assert.equal(s.source, 'minutes');
    assert.equal(s.times.length, 12);
    assert.deepEqual(s.totals, { requests: 1200, errors: 120, tokens: 1200 * 15, groups: 5 });
    const sum = (f: 'requests' | 'errors' | 'tokens') =>
      s.series.reduce((a, x) => a + x[f].reduce((p, q) => p + q, 0), 0);
    assert.equal(sum('requests'), 1200);
    assert.equal(sum('errors'), 120);
    assert.equal(sum('tokens'), 18_000);
    for (const x of s.series) assert.deepEqual(x.requests, new Array(12).fill(20), x.group);
  });

  it('keeps the busiest groups and sums the rest as (other)', async () => {
    const s = await usageSeries(
      store,
      { from: String(T0), to: String(T0 + 12 * HOUR), by: 'model', top: '2' },
      T0,
    );
    // Five models of 240 requests each: ties go by name, so baichuan and deepseek are kept.
    assert.deepEqual(s.series.map((x) => x.group).sort(), [OTHER, 'baichuan', 'deepseek']);
    assert.equal(s.series[0]?.group, OTHER, 'largest first');
    const other = s.series.find((x) => x.group === OTHER);
    assert.equal(
      other?.requests.reduce((a, b) => a + b, 0),
      720,
    );
    const byStatus = await usageSeries(
      store,
      { from: String(T0), to: String(T0 + 12 * HOUR), by: 'status' },
      T0,
    );
    assert.deepEqual(byStatus.series.map((x) => x.group).sort(), ['200', '502']);
    const byKey = await usageSeries(store, { from: String(T0), to: String(T0 + 12 * HOUR), by: 'key' }, T0);
    assert.deepEqual(byKey.series.map((x) => x.group).sort(), ['key:k0', 'key:k1', 'key:k2']);
  });

  it('refuses bad parameters with KAPOK_HTTP_BAD_REQUEST naming the fix', async () => {
    const bad = async (q: Record<string, string>, re: RegExp) =>
      assert.rejects(
        usageSeries(store, q, T0),
        (e) => isKapokError(e, 'KAPOK_HTTP_BAD_REQUEST') && re.test(e.message),
      );
    await bad({ by: 'colour' }, /by must be one of: model, key, status, target/);
    await bad({ buckets: '0' }, /buckets: an integer from 1 to 1000/);
    await bad({ from: 'yesterday' }, /from: an RFC 3339 time/);
    await bad({ from: String(T0 + 1), to: String(T0) }, /from must be before to/);
  });

  it('pages records newest first with a keyset cursor, every record once', async () => {
    const seen = new Set<number>();
    let before: string | undefined;
    let pages = 0;
    let last = Number.POSITIVE_INFINITY;
    for (;;) {
      const r = await usageRecords(store, { limit: '500', ...(before ? { before } : {}) });
      pages++;
      for (const x of r.records) {
        assert.ok(x.id < last, 'newest first');
        last = x.id;
        seen.add(x.id);
      }
      if (r.next === null) break;
      before = String(r.next);
    }
    assert.equal(pages, 3);
    assert.equal(seen.size, 1200);
    const glm = await usageRecords(store, { model: 'glm', limit: '5' });
    assert.ok(glm.records.every((x) => x.model === 'glm'));
    await assert.rejects(usageRecords(store, { limit: '501' }), (e) =>
      isKapokError(e, 'KAPOK_HTTP_BAD_REQUEST'),
    );
  });
});
