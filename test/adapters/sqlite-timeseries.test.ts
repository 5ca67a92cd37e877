import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  createSqliteTimeSeries,
  keyOrder,
  type SqliteTimeSeriesOptions,
} from '../../src/adapters/sqlite/timeseries.js';
import { isKapokError } from '../../src/core/errors.js';
import type { FieldValue } from '../../src/ports/timeseries.js';
import { tmpDir } from '../helpers/tmp.js';
import { type Stored, timeSeriesConformance } from '../ports/timeseries.conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'kapok-sqlite-ts-'));
const file = join(dir, 'points.db');

/** What the embedded sink's tables hold for a measurement (a second, read-only connection). */
function read(measurement: string): Stored[] {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT s.device, s.tags, s.field, p.ts, coalesce(p.svalue, p.value) AS value
         FROM points p JOIN series s ON s.id = p.series WHERE s.measurement = ?`,
      )
      .all(measurement) as { device: string; tags: string; field: string; ts: number; value: FieldValue }[];
    return rows.map((r) => ({ ...r, tags: JSON.parse(r.tags) }));
  } finally {
    db.close();
  }
}

timeSeriesConformance('sqlite', {
  make: async (name) => createSqliteTimeSeries({ name, file }),
  read: async (m) => read(m),
  queries: true,
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});

describe('sqlite time-series adapter', () => {
  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'options'],
      [{ name: '', file: 'x.db' }, 'name'],
      [{ name: 'e', file: '' }, 'file'],
      [{ name: 'e', file: 3 }, 'file'],
    ];
    for (const [opts, option] of cases)
      assert.throws(
        () => createSqliteTimeSeries(opts as SqliteTimeSeriesOptions),
        (err) => isKapokError(err, 'KAPOK_CONFIG_INVALID') && err.message.includes(`option ${option} `),
      );
  });

  it('fails with KAPOK_EDGE_SINK naming the sink and the file when the file cannot be opened', () => {
    const bad = join(tmpDir(), 'no-such-dir', 'points.db');
    assert.throws(
      () => createSqliteTimeSeries({ name: 'embedded-0', file: bad }),
      (err) =>
        isKapokError(err, 'KAPOK_EDGE_SINK') &&
        err.message.includes('embedded-0') &&
        err.message.includes(bad),
    );
  });

  it('keeps a series id per distinct tag set across reopen (series are interned once)', async () => {
    const f = join(tmpDir(), 'p.db');
    const p = (ts: number) => ({
      measurement: 'm',
      device: 'd',
      tags: { b: '2', a: '1' },
      fields: { v: ts },
      ts,
    });
    const first = createSqliteTimeSeries({ name: 'e', file: f });
    await first.write([p(1), p(2)]);
    await first.close();
    const second = createSqliteTimeSeries({ name: 'e', file: f });
    await second.write([p(3)]);
    await second.close();
    const db = new Database(f, { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT measurement, device, field, tags, type FROM series').all(), [
        { measurement: 'm', device: 'd', field: 'v', tags: '{"a":"1","b":"2"}', type: 'number' },
      ]);
      assert.equal((db.prepare('SELECT count(*) AS n FROM points').get() as { n: number }).n, 3);
    } finally {
      db.close();
    }
  });

  it('orders a batch by (series, ts, arrival) like a comparison sort, in order or not, dense ids or wide', () => {
    let seed = 11;
    const rnd = (k: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % k;
    };
    const cases: [number, number, boolean][] = [
      [0, 1, true],
      [1, 1, true],
      [500, 7, true], // devices in time order (the usual batch)
      [500, 7, false], // ts shuffled, with ties
      [300, 1_000_000, true], // wide id range: compared
      [2000, 40, false],
    ];
    for (const [n, ids, ordered] of cases) {
      const base = 1 + rnd(100_000);
      const series = Array.from({ length: n }, () => base + rnd(ids));
      const ts = Array.from({ length: n }, (_, i) => (ordered ? i >> 2 : rnd(50)));
      const want = Array.from({ length: n }, (_, i) => i).sort(
        (a, b) =>
          (series[a] as number) - (series[b] as number) || (ts[a] as number) - (ts[b] as number) || a - b,
      );
      assert.deepEqual([...keyOrder(series, ts, n)], want, `n=${n} ids=${ids} ordered=${ordered}`);
    }
  });

  it('writes a batch in key order: interleaved series all stored, the later of two equal keys wins', async () => {
    const f = join(tmpDir(), 'p.db');
    const sink = createSqliteTimeSeries({ name: 'e', file: f });
    // 3 devices × 2 fields interleaved, 300 points: more rows than one multi-row statement holds.
    const pts = Array.from({ length: 300 }, (_, i) => ({
      measurement: 'm',
      device: `d${i % 3}`,
      tags: {},
      fields: { a: i, b: `s${i}` },
      ts: 1000 + Math.floor(i / 3),
    }));
    // The same key twice in one batch, the later one last: it is what stays.
    pts.push({ measurement: 'm', device: 'd0', tags: {}, fields: { a: -1, b: 'later' }, ts: 1000 });
    await sink.write(pts);
    await sink.close();
    const db = new Database(f, { readonly: true });
    try {
      const rows = db
        .prepare(
          `SELECT s.device, s.field, p.ts, coalesce(p.svalue, p.value) AS value
           FROM points p JOIN series s ON s.id = p.series ORDER BY s.device, s.field, p.ts`,
        )
        .all() as { device: string; field: string; ts: number; value: number | string }[];
      assert.equal(rows.length, 600);
      assert.deepEqual(
        rows.filter((r) => r.device === 'd0' && r.ts === 1000).map((r) => r.value),
        [-1, 'later'],
      );
      assert.deepEqual(rows.filter((r) => r.device === 'd2' && r.field === 'a').at(-1), {
        device: 'd2',
        field: 'a',
        ts: 1099,
        value: 299,
      });
    } finally {
      db.close();
    }
  });
});
