/**
 * The one conformance suite of the TimeSeriesSink port, run against every adapter (SQLite,
 * PostgreSQL, InfluxDB). The harness opens sinks on the engine under test and reads back what the
 * engine holds with the engine's own means (SQL, InfluxQL), so a write is checked where it lands.
 * Every test writes its own measurements, so one database per run is enough.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, it } from 'node:test';
import { isKapokError, type KapokError } from '../../src/core/errors.js';
import type {
  FieldValue,
  Point,
  TimeSeriesQuery,
  TimeSeriesSink,
  WriteResult,
} from '../../src/ports/timeseries.js';

/** One stored field value as the engine holds it. */
export interface Stored {
  device: string;
  /** Without the device (InfluxDB keeps it as a tag). */
  tags: Record<string, string>;
  field: string;
  ts: number;
  value: FieldValue | null;
}

export interface TimeSeriesHarness {
  /** A new sink named `name` on the engine under test (same database every call). */
  make(name: string): Promise<TimeSeriesSink>;
  /** Every value the engine holds for `measurement`. */
  read(measurement: string): Promise<Stored[]>;
  /** Whether its sinks answer range queries (TimeSeriesSink.query); the query tests run then. */
  queries?: boolean;
  /** A sink whose engine is not there (connection refused); absent for in-process engines. */
  down?: () => Promise<TimeSeriesSink>;
  /** Runs once at the end (drop the table or database, remove files). */
  cleanup?: () => Promise<void>;
}

/** An own-key record, so `__proto__` is a key like any other (as the decoders build them). */
function rec<T>(entries: [string, T][]): Record<string, T> {
  const o: Record<string, T> = {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** Booleans as 1/0: engines differ in whether they keep the type, not the value. */
const norm = (v: FieldValue | null) => (typeof v === 'boolean' ? Number(v) : v);

function expected(points: readonly Point[]): Stored[] {
  const out: Stored[] = [];
  for (const p of points)
    for (const [field, v] of Object.entries(p.fields))
      out.push({ device: p.device, tags: { ...p.tags }, field, ts: p.ts, value: v });
  return sorted(out);
}

function sorted(rows: Stored[]): Stored[] {
  const key = (r: Stored) => JSON.stringify([r.device, r.ts, r.field, Object.entries(r.tags).sort()]);
  return rows
    .map((r) => ({ ...r, tags: rec(Object.entries(r.tags).sort(([a], [b]) => (a < b ? -1 : 1))) }))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function sameStored(got: Stored[], want: Stored[], what: string): void {
  const show = (rows: Stored[]) =>
    sorted(rows).map((r) => ({ ...r, tags: JSON.stringify(Object.entries(r.tags)), value: norm(r.value) }));
  assert.deepEqual(show(got), show(want), what);
}

function rejectsWithSink(err: unknown, sink: string): true {
  assert.ok(isKapokError(err, 'KAPOK_EDGE_SINK'), `expected KAPOK_EDGE_SINK, got ${String(err)}`);
  assert.ok((err as KapokError).message.includes(sink), `the message names the sink: ${String(err)}`);
  return true;
}

export function timeSeriesConformance(engine: string, h: TimeSeriesHarness): void {
  describe(`TimeSeriesSink conformance: ${engine}`, () => {
    const run = randomBytes(3).toString('hex');
    let seq = 0;
    const uniq = (base = 'm') => `${base}_${run}_${++seq}`;
    const opened: TimeSeriesSink[] = [];
    const open = async () => {
      const s = await h.make(`conf-${engine}`);
      opened.push(s);
      return s;
    };
    const t0 = Date.UTC(2026, 0, 1);
    const point = (measurement: string, i: number, extra: Partial<Point> = {}): Point => ({
      measurement,
      device: 'dev-1',
      tags: rec([['site', 'gz']]),
      fields: rec<FieldValue>([['v', i]]),
      ts: t0 + i,
      ...extra,
    });

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });
    after(async () => {
      await h.cleanup?.();
    });

    it('answers ping, names itself and offers queries when the harness says so', async () => {
      const s = await open();
      assert.equal(s.name, `conf-${engine}`);
      await s.ping();
      assert.equal(Boolean(s.query), Boolean(h.queries));
    });

    it('stores every field of every point with its device, tags, time and value', async () => {
      const s = await open();
      const m = uniq();
      const points: Point[] = [
        point(m, 0, {
          fields: rec<FieldValue>([
            ['float', 21.5],
            ['int', 42],
            ['neg', -3.25e-7],
            ['big', 2 ** 53],
            ['on', true],
            ['off', false],
            ['text', 'a "quoted", spaced = \\ string\nwith a newline, 温度 ✓'],
            ['empty', ''],
          ]),
        }),
        point(m, 1, {
          device: 'dev-2',
          tags: rec([
            ['line', '3'],
            ['site', 'sz'],
          ]),
        }),
        point(m, 2, { tags: {} }),
        point(m, -t0 - 1500, { fields: rec<FieldValue>([['v', 7]]) }), // before the epoch
      ];
      assert.equal(await s.write(points), undefined, 'nothing rejected');
      sameStored(await h.read(m), expected(points), 'read back');
    });

    it('resolves an empty batch at once and stores nothing', async () => {
      const s = await open();
      assert.equal(await s.write([]), undefined);
    });

    it('never duplicates a point written again (replay after a crash or a retry)', async () => {
      const s = await open();
      const m = uniq();
      const points = Array.from({ length: 20 }, (_, i) => point(m, i));
      await s.write(points);
      await s.write(points);
      await s.write(points.slice(5, 10));
      const again = await open(); // another connection, as after a restart
      await again.write(points);
      sameStored(await h.read(m), expected(points), 'each point once');
    });

    it('takes tags as a set (order does not matter) and keeps different tag sets apart', async () => {
      const s = await open();
      const m = uniq();
      const ab = point(m, 0, {
        tags: rec([
          ['a', '1'],
          ['b', '2'],
        ]),
      });
      const ba = point(m, 0, {
        tags: rec([
          ['b', '2'],
          ['a', '1'],
        ]),
      });
      const other = point(m, 0, {
        tags: rec([
          ['a', '1'],
          ['b', '3'],
        ]),
      });
      await s.write([ab]);
      await s.write([ba, other]);
      sameStored(await h.read(m), expected([ab, other]), 'two series');
    });

    it('stores names and tags with odd characters exactly', async () => {
      const s = await open();
      const odd = [
        'with space',
        'comma,here',
        'eq=sign',
        'quote"d',
        "apos'trophe",
        'back\\slash',
        'tab\there',
        '__proto__',
        'constructor',
        'hash#/+',
        'unicode 温度 ✓ 🚗',
        "sql'); DROP TABLE points; --",
      ];
      const points = odd.map((n, i) => ({
        measurement: `${uniq()} ${n}`,
        device: `dev ${n}`,
        tags: rec([
          [n, `tag ${n}`],
          ['plain', n],
        ]),
        fields: rec<FieldValue>([
          [n, i],
          [`s ${n}`, n],
        ]),
        ts: t0 + i,
      }));
      assert.equal(await s.write(points), undefined, 'nothing rejected');
      for (const p of points)
        sameStored(await h.read(p.measurement), expected([p]), JSON.stringify(p.measurement));
    });

    it('accounts for every point of a batch with data an engine may not hold: stored, or counted as rejected', async () => {
      const s = await open();
      const m = uniq();
      const good = Array.from({ length: 5 }, (_, i) => point(m, i));
      // Each is odd in one way some engine cannot store (NUL in text or a tag, a lone surrogate,
      // a newline or a trailing backslash in a name, a reserved name, an empty tag value).
      const bad: Point[] = [
        point(m, 100, { fields: rec<FieldValue>([['s', 'nul\u0000inside']]) }),
        point(m, 101, { tags: rec([['t', 'nul\u0000tag']]) }),
        point(m, 102, { tags: rec([['t', 'lone \ud800 surrogate']]) }),
        point(`${m}\nforged,device=victim v=666`, 103),
        point(m, 104, { device: 'ends with\\' }),
        point(m, 105, { fields: rec<FieldValue>([['time', 1]]) }),
        point(m, 106, { tags: rec([['empty', '']]) }),
      ];
      const res = (await s.write([...good.slice(0, 2), ...bad, ...good.slice(2)])) as WriteResult | undefined;
      const rows = await h.read(m);
      const at = (ts: number) => rows.filter((r) => r.ts === ts);
      // The good points are all there, whatever happened to the others.
      for (const p of good)
        assert.deepEqual(
          at(p.ts).map((r) => [r.device, r.field, norm(r.value)]),
          [['dev-1', 'v', p.ts - t0]],
        );
      let storedBad = 0;
      for (const p of bad)
        if ((p.measurement === m ? rows : await h.read(p.measurement)).some((r) => r.ts === p.ts))
          storedBad++;
      assert.equal(
        storedBad + (res?.rejected ?? 0),
        bad.length,
        `stored ${storedBad}, rejected ${res?.rejected}`,
      );
      if (res) assert.ok(res.reason.length > 0, 'a rejection says why');
      // Nothing leaked out of the odd names: no forged point of another device.
      assert.deepEqual(await h.read('forged'), []);
    });

    it('writes a large batch (more rows than one statement or request holds)', async () => {
      const s = await open();
      const m = uniq();
      const fields = rec<FieldValue>(Array.from({ length: 7 }, (_, i) => [`f${i}`, i] as [string, number]));
      const points = Array.from({ length: 1500 }, (_, i) => point(m, i, { fields }));
      assert.equal(await s.write(points), undefined);
      const rows = await h.read(m);
      assert.equal(rows.length, 1500 * 7);
    });

    it('rejects write and ping with KAPOK_EDGE_SINK after close; close is idempotent', async () => {
      const s = await h.make('conf-closed');
      await s.close();
      await s.close();
      await assert.rejects(s.write([point(uniq(), 0)]), (err) => rejectsWithSink(err, 'conf-closed'));
      await assert.rejects(s.ping(), (err) => rejectsWithSink(err, 'conf-closed'));
    });

    if (h.down) {
      const down = h.down;
      it('rejects write and ping with KAPOK_EDGE_SINK naming the sink when the engine is down', async () => {
        const s = await down();
        try {
          await assert.rejects(s.write([point(uniq(), 0)]), (err) => rejectsWithSink(err, s.name));
          await assert.rejects(s.ping(), (err) => rejectsWithSink(err, s.name));
          assert.equal(await s.write([]), undefined, 'an empty batch needs no engine');
        } finally {
          await s.close();
        }
      });
    }

    if (!h.queries) return;
    describe('queries', () => {
      const withQuery = async () => {
        const s = await open();
        return { s, q: s.query as TimeSeriesQuery };
      };

      it('answers raw points in time order, from inclusive, to exclusive, per device or all', async () => {
        const w = await withQuery();
        const m = uniq();
        await w.s.write([
          point(m, 3),
          point(m, 1),
          point(m, 2, { device: 'dev-2' }),
          point(m, 4, { fields: rec<FieldValue>([['v', 'text']]) }),
          point(m, 5, { fields: rec<FieldValue>([['v', true]]) }),
          point(m, 9),
        ]);
        const range = {
          measurement: m,
          field: 'v',
          from: t0 + 1,
          to: t0 + 9,
          agg: 'avg' as const,
          limit: 100,
        };
        assert.deepEqual(await w.q.range(range), {
          points: [
            { ts: t0 + 1, value: 1 },
            { ts: t0 + 2, value: 2 },
            { ts: t0 + 3, value: 3 },
            { ts: t0 + 4, value: 'text' },
            { ts: t0 + 5, value: 1 },
          ],
          more: false,
        });
        assert.deepEqual((await w.q.range({ ...range, device: 'dev-2' })).points, [{ ts: t0 + 2, value: 2 }]);
        assert.deepEqual(await w.q.range({ ...range, limit: 2 }), {
          points: [
            { ts: t0 + 1, value: 1 },
            { ts: t0 + 2, value: 2 },
          ],
          more: true,
        });
        assert.deepEqual(await w.q.range({ ...range, field: 'nope' }), { points: [], more: false });
      });

      it('reduces windows aligned to the epoch with each aggregate, also before the epoch', async () => {
        const w = await withQuery();
        const m = uniq();
        const at = (ts: number, v: number) => ({
          ...point(m, 0, { fields: rec<FieldValue>([['v', v]]) }),
          ts,
        });
        await w.s.write([at(-15, 1), at(-5, 2), at(-1, 4), at(0, 10), at(3, 20), at(9, 30), at(10, 5)]);
        const q = (agg: 'avg' | 'min' | 'max' | 'sum' | 'count' | 'last') =>
          w.q.range({ measurement: m, field: 'v', from: -20, to: 20, everyMs: 10, agg, limit: 100 });
        const pairs = async (agg: Parameters<typeof q>[0]) =>
          (await q(agg)).points.map((p) => [p.ts, p.value]);
        assert.deepEqual(await pairs('avg'), [
          [-20, 1],
          [-10, 3],
          [0, 20],
          [10, 5],
        ]);
        assert.deepEqual(await pairs('min'), [
          [-20, 1],
          [-10, 2],
          [0, 10],
          [10, 5],
        ]);
        assert.deepEqual(await pairs('max'), [
          [-20, 1],
          [-10, 4],
          [0, 30],
          [10, 5],
        ]);
        assert.deepEqual(await pairs('sum'), [
          [-20, 1],
          [-10, 6],
          [0, 60],
          [10, 5],
        ]);
        assert.deepEqual(await pairs('count'), [
          [-20, 1],
          [-10, 2],
          [0, 3],
          [10, 1],
        ]);
        assert.deepEqual(await pairs('last'), [
          [-20, 1],
          [-10, 4],
          [0, 30],
          [10, 5],
        ]);
      });

      it('lists each device and measurement with its newest values', async () => {
        const w = await withQuery();
        const m = uniq();
        const dev = `dev-${run}`;
        await w.s.write([
          point(m, 5, {
            device: dev,
            fields: rec<FieldValue>([
              ['v', 5],
              ['on', true],
            ]),
          }),
          point(m, 9, {
            device: dev,
            fields: rec<FieldValue>([
              ['v', 9],
              ['s', 'x'],
            ]),
          }),
        ]);
        await w.s.write([point(m, 7, { device: dev })]); // older than what is there: not the latest
        const mine = (await w.q.devices(10_000)).filter((d) => d.device === dev);
        assert.deepEqual(mine, [{ device: dev, measurement: m, lastSeen: t0 + 9, latest: { v: 9, s: 'x' } }]);
      });
    });
  });
}
