import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createSqliteSpoolStore } from '../../src/adapters/sqlite/spool.js';
import { isKapokError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { createDecoder, type Point } from '../../src/edge/decode/index.js';
import { SinkRunner } from '../../src/edge/spool/runner.js';
import { ROW_OVERHEAD, Spool } from '../../src/edge/spool/spool.js';
import type { TimeSeriesSink as Sink } from '../../src/ports/timeseries.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

const msg = (i: number) => ({
  topic: 'telemetry/d/m',
  payload: Buffer.from(`{"v":${i}}`),
  receivedAt: 1000 + i,
});
const open = (file: string, extra: Partial<ConstructorParameters<typeof Spool>[0]> = {}) =>
  new Spool({
    store: createSqliteSpoolStore({ file, fsync: 'normal' }),
    maxBytes: 1 << 30,
    onFull: 'reject',
    sinks: ['a', 'b'],
    deadLetterMax: 3,
    ...extra,
  });

describe('edge spool', () => {
  it('keeps per-sink cursors; deletes what every sink confirmed; ids never go back', () => {
    const file = join(tmpDir(), 's.db');
    const s = open(file);
    s.append([msg(1), msg(2), msg(3)]);
    assert.deepEqual(
      s.read('a', 10).map((r) => r.id),
      [1, 2, 3],
    );
    s.confirm('a', 3);
    assert.equal(s.read('a', 10).length, 0);
    assert.deepEqual(
      s.read('b', 2).map((r) => r.payload.toString()),
      ['{"v":1}', '{"v":2}'],
    );
    s.confirm('b', 3);
    assert.equal(s.bytes, 0, 'everything confirmed by both sinks is deleted');
    s.append([msg(4)]);
    assert.deepEqual(
      s.read('a', 10).map((r) => r.id),
      [4],
      'a fresh id after the table was emptied',
    );
    s.close();
  });

  it('replays what a sink did not confirm after a reopen', () => {
    const file = join(tmpDir(), 's.db');
    const s = open(file);
    s.append([msg(1), msg(2), msg(3), msg(4)]);
    s.confirm('a', 2);
    s.confirm('b', 4);
    s.close();
    const r = open(file);
    assert.deepEqual(
      r.read('a', 10).map((x) => x.id),
      [3, 4],
    );
    assert.deepEqual(r.read('b', 10), []);
    assert.equal(r.bytes, 2 * (msg(3).payload.length + 13 + ROW_OVERHEAD));
    r.close();
  });

  it('onFull reject refuses (and stores nothing) past maxBytes', () => {
    const one = msg(1).payload.length + 13 + ROW_OVERHEAD;
    const s = open(join(tmpDir(), 's.db'), { maxBytes: one * 2 + 1 });
    const res = s.append([msg(1), msg(2), msg(3)]);
    assert.deepEqual(res.slice(0, 2), [1, 2]);
    assert.ok(isKapokError(res[2], 'KAPOK_EDGE_SPOOL_FULL'));
    assert.match(res[2]?.message ?? '', /edge\.spool\.maxBytes/);
    assert.equal(s.read('a', 10).length, 2);
    s.confirm('a', 2);
    s.confirm('b', 2);
    assert.deepEqual(s.append([msg(3)]), [3], 'room again once the sinks confirmed');
    s.close();
  });

  it('onFull drop-oldest drops, counts and moves every cursor past the dropped', () => {
    const one = msg(1).payload.length + 13 + ROW_OVERHEAD;
    const drops: number[] = [];
    const s = open(join(tmpDir(), 's.db'), {
      maxBytes: one * 3,
      onFull: 'drop-oldest',
      onDrop: (n) => drops.push(n),
    });
    s.append([msg(1), msg(2), msg(3), msg(4), msg(5)]);
    assert.deepEqual(drops, [1, 1]);
    assert.deepEqual(
      s.read('a', 10).map((r) => r.payload.toString()),
      ['{"v":3}', '{"v":4}', '{"v":5}'],
    );
    assert.ok(s.bytes <= one * 3);
    s.close();
  });

  it('keeps at most deadLetters.max dead letters, newest last', () => {
    const s = open(join(tmpDir(), 's.db'));
    for (let i = 0; i < 5; i++) s.deadLetter('t', Buffer.from([i]), `r${i}`, i);
    assert.deepEqual(
      s.deadLetters(10).map((d) => d.reason),
      ['r2', 'r3', 'r4'],
    );
    s.close();
  });
});

class FlakySink implements Sink {
  readonly name = 'a';
  failuresLeft = 2;
  attempts = 0;
  stored: Point[] = [];
  async write(points: readonly Point[]) {
    this.attempts++;
    if (this.failuresLeft-- > 0) throw new Error('sink down');
    this.stored.push(...points);
  }
  async ping() {}
  async close() {}
}

describe('edge sink runner', () => {
  it('retries a failing sink with backoff and confirms only after it took the batch', async () => {
    const s = new Spool({
      store: createSqliteSpoolStore({ file: join(tmpDir(), 's.db'), fsync: 'normal' }),
      maxBytes: 1 << 20,
      onFull: 'reject',
      sinks: ['a'],
      deadLetterMax: 10,
    });
    s.append([msg(1), msg(2), msg(3)]);
    const sink = new FlakySink();
    const logs = captureLogs();
    const r = new SinkRunner({
      spool: s,
      sink,
      decode: createDecoder({ topicPattern: 'telemetry/{device}/{measurement}', format: 'auto' }),
      batchSize: 2,
      intervalMs: 5,
      retryMinMs: 1,
      retryMaxMs: 5,
      logger: createLogger({ level: 'warn', destination: logs }),
    });
    r.start();
    const end = Date.now() + 10_000;
    while (sink.stored.length < 3 && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
    await r.stop();
    assert.deepEqual(
      sink.stored.map((p) => p.fields.v),
      [1, 2, 3],
    );
    assert.equal(sink.attempts, 4, 'two failures, then two batches');
    assert.equal(s.backlog('a'), 0);
    assert.ok(logs.lines.some((l) => l.msg === 'edge sink write failed; retrying'));
    s.close();
  });
});

describe('edge sink runner and the decoded cache', () => {
  /** Counts payload reads (SpoolStore.read) under the runner; the spool itself is the real one. */
  const counted = (file: string) => {
    const store = createSqliteSpoolStore({ file, fsync: 'normal' });
    const calls = { read: 0 };
    const read = store.read.bind(store);
    store.read = (afterId, limit) => {
      calls.read++;
      return read(afterId, limit);
    };
    return { store, calls };
  };

  it('takes a batch the cache holds whole without reading payloads back; a miss reads and decodes the batch', async () => {
    const { DecodedCache } = await import('../../src/edge/spool/decoded-cache.js');
    const { store, calls } = counted(join(tmpDir(), 's.db'));
    const s = new Spool({ store, maxBytes: 1 << 20, onFull: 'reject', sinks: ['a'], deadLetterMax: 10 });
    const cache = new DecodedCache(100);
    const decode = createDecoder({ topicPattern: 'telemetry/{device}/{measurement}', format: 'auto' });
    const spool = (from: number, to: number, cached: boolean) => {
      const batch = Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
      const ids = s.append(batch);
      if (cached)
        ids.forEach((id, i) => {
          const m = batch[i] as (typeof batch)[number];
          // Marked, so the test tells a cached point from one decoded again.
          cache.set(
            id as number,
            decode(m.topic, m.payload, m.receivedAt).map((p) => ({ ...p, tags: { from: 'cache' } })),
          );
        });
    };
    spool(1, 3, true);
    const sink = new FlakySink();
    sink.failuresLeft = 0;
    const r = new SinkRunner({
      spool: s,
      sink,
      decode,
      cache,
      batchSize: 3,
      intervalMs: 5,
      retryMinMs: 1,
      retryMaxMs: 5,
      logger: createLogger({ level: 'warn', destination: captureLogs() }),
    });
    r.start();
    const until = async (n: number) => {
      const end = Date.now() + 10_000;
      while (sink.stored.length < n && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
    };
    await until(3);
    assert.equal(calls.read, 0, 'every message of the batch was in the cache: no payload read');
    // 4 cached, 5 not (evicted, or spooled before a restart): the batch is read and decoded.
    spool(4, 4, true);
    spool(5, 6, false);
    await until(6);
    await r.stop();
    assert.ok(calls.read >= 1, 'a miss reads the batch back');
    assert.deepEqual(
      sink.stored.map((p) => [p.fields.v, p.tags.from ?? 'decoded']),
      [
        [1, 'cache'],
        [2, 'cache'],
        [3, 'cache'],
        [4, 'cache'],
        [5, 'decoded'],
        [6, 'decoded'],
      ],
    );
    assert.equal(s.backlog('a'), 0);
    s.close();
  });
});

describe('edge decoded cache', () => {
  it('is bounded by points, evicts oldest first, and trims confirmed ids', async () => {
    const { DecodedCache } = await import('../../src/edge/spool/decoded-cache.js');
    const pts = (n: number) => Array.from({ length: n }, () => ({}) as Point);
    const c = new DecodedCache(10);
    c.set(1, pts(4));
    c.set(2, pts(4));
    c.set(3, pts(4));
    assert.equal(c.get(1), undefined, 'oldest evicted past 10 points');
    assert.equal(c.get(3)?.length, 4);
    c.set(4, pts(11));
    assert.equal(c.get(4), undefined, 'an entry larger than the bound is not kept');
    c.trim(2);
    assert.equal(c.get(2), undefined);
    assert.equal(c.size, 1);
  });
});
