import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  createSqliteTimeSeries,
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
});
