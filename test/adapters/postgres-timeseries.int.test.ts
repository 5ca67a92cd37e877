import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import pg from 'pg';
import { describePostgresUrl } from '../../src/adapters/postgres/store.js';
import {
  createPostgresTimeSeries,
  type PostgresTimeSeriesOptions,
} from '../../src/adapters/postgres/timeseries.js';
import { isKapokError } from '../../src/core/errors.js';
import type { FieldValue } from '../../src/ports/timeseries.js';
import { serviceAvailable } from '../helpers/services.js';
import { type Stored, timeSeriesConformance } from '../ports/timeseries.conformance.js';

const PG_URL = process.env.KAPOK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const table = `edge_conf_${randomBytes(4).toString('hex')}`;

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

const { skip } = await serviceAvailable('postgres', () => sql('SELECT 1').then(() => undefined), {
  where: describePostgresUrl(PG_URL),
});

async function read(measurement: string): Promise<Stored[]> {
  const exists = await sql<{ t: string | null }>('SELECT to_regclass($1) AS t', [table]);
  if (!exists[0]?.t) return [];
  const rows = await sql<{
    device: string;
    tags: Record<string, string>;
    field: string;
    ts: string;
    value: number | null;
    svalue: string | null;
  }>(
    `SELECT device, tags, field, (extract(epoch FROM ts) * 1000)::bigint AS ts, value, svalue FROM ${table} WHERE measurement = $1`,
    [measurement],
  );
  return rows.map((r) => ({
    device: r.device,
    tags: r.tags,
    field: r.field,
    ts: Number(r.ts),
    value: (r.svalue ?? r.value) as FieldValue,
  }));
}

describe('postgres time-series sink (needs PostgreSQL)', { skip }, () => {
  after(() => sql(`DROP TABLE IF EXISTS ${table}`).then(() => {}));

  timeSeriesConformance('postgres', {
    make: async (name) => createPostgresTimeSeries({ name, url: PG_URL, table }),
    read,
    down: async () =>
      createPostgresTimeSeries({
        name: 'postgres-down',
        url: 'postgres://kapok:s3cret-pw@127.0.0.1:1/test',
        table,
        connectTimeoutMs: 2000,
      }),
  });

  describe('postgres time-series adapter', () => {
    const own = `edge_own_${randomBytes(4).toString('hex')}`;
    before(() => sql(`DROP TABLE IF EXISTS ${own}`));
    after(() => sql(`DROP TABLE IF EXISTS ${own}`).then(() => {}));

    it('creates its table on the first write: one row per field, tags as JSONB, strings apart from numbers', async () => {
      const s = createPostgresTimeSeries({ name: 'postgres-1', url: PG_URL, table: own });
      try {
        await s.write([
          {
            measurement: 'env',
            device: 'pg-1',
            tags: { site: 'gz' },
            fields: { v: 7, s: 'x7', on: true },
            ts: 1767225600007,
          },
        ]);
      } finally {
        await s.close();
      }
      const rows = await sql<{ field: string; value: number | null; svalue: string | null; tags: object }>(
        `SELECT field, value, svalue, tags FROM ${own} WHERE ts = to_timestamp(1767225600.007) ORDER BY field`,
      );
      assert.deepEqual(rows, [
        { field: 'on', value: 1, svalue: null, tags: { site: 'gz' } },
        { field: 's', value: null, svalue: 'x7', tags: { site: 'gz' } },
        { field: 'v', value: 7, svalue: null, tags: { site: 'gz' } },
      ]);
    });

    it('a refused write (the server is fine, the table refuses) rejects with KAPOK_EDGE_SINK and the reason, then recovers', async () => {
      await sql(`ALTER TABLE ${own} ADD CONSTRAINT outage CHECK (false) NOT VALID`);
      const s = createPostgresTimeSeries({ name: 'postgres-1', url: PG_URL, table: own });
      const p = { measurement: 'env', device: 'pg-2', tags: {}, fields: { v: 1 }, ts: 1 };
      try {
        await assert.rejects(
          s.write([p]),
          (err) =>
            isKapokError(err, 'KAPOK_EDGE_SINK') &&
            /postgres-1/.test(err.message) &&
            /outage/.test(err.message),
        );
        await sql(`ALTER TABLE ${own} DROP CONSTRAINT outage`);
        assert.equal(await s.write([p]), undefined);
      } finally {
        await s.close();
      }
      assert.equal((await sql(`SELECT 1 FROM ${own} WHERE device = 'pg-2'`)).length, 1);
    });

    it('never puts the password in an error', async () => {
      const s = createPostgresTimeSeries({
        name: 'postgres-9',
        url: 'postgres://kapok:s3cret-pw@127.0.0.1:1/test',
        table: own,
        connectTimeoutMs: 2000,
      });
      try {
        await assert.rejects(
          s.write([{ measurement: 'm', device: 'd', tags: {}, fields: { v: 1 }, ts: 1 }]),
          (err) => {
            assert.ok(isKapokError(err, 'KAPOK_EDGE_SINK'));
            assert.match(err.message, /127\.0\.0\.1:1\/test is not reachable/);
            assert.ok(!inspect(err, { depth: 10 }).includes('s3cret-pw'), 'the error leaks the password');
            return true;
          },
        );
      } finally {
        await s.close();
      }
    });
  });
});

describe('postgres time-series adapter (no server needed)', () => {
  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option, never echoing the URL', () => {
    const ok = { name: 'p', url: 'postgres://h/db', table: 'edge_points' };
    const cases: Array<[unknown, string]> = [
      [null, 'options'],
      [{ ...ok, name: '' }, 'name'],
      [{ ...ok, url: 'not a url with s3cret' }, 'url'],
      [{ ...ok, url: 'mysql://root:s3cret@db/x' }, 'url'],
      [{ ...ok, table: 'Edge-Points; DROP' }, 'table'],
      [{ ...ok, poolMax: 0 }, 'poolMax'],
      [{ ...ok, connectTimeoutMs: 0.5 }, 'connectTimeoutMs'],
    ];
    for (const [opts, option] of cases)
      assert.throws(
        () => createPostgresTimeSeries(opts as PostgresTimeSeriesOptions),
        (err) =>
          isKapokError(err, 'KAPOK_CONFIG_INVALID') &&
          err.message.includes(`option ${option} `) &&
          !err.message.includes('s3cret'),
        `${option}: ${JSON.stringify(opts)}`,
      );
  });
});
