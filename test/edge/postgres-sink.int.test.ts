import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { serviceAvailable } from '../helpers/services.js';
import { type Edge, startEdge, until } from './setup.js';

const PG_URL = process.env.KAPOK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const table = `edge_test_${randomBytes(4).toString('hex')}`;

async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

const { skip } = await serviceAvailable('postgres', () => sql('SELECT 1').then(() => undefined));

describe('edge: PostgreSQL sink next to the embedded one', { skip }, () => {
  let e: Edge;
  before(async () => {
    // The table exists with a constraint that refuses every row: the sink is "down" until it goes.
    await sql(`CREATE TABLE ${table} (ts TIMESTAMPTZ NOT NULL, measurement TEXT NOT NULL, device TEXT NOT NULL,
      field TEXT NOT NULL, tags JSONB NOT NULL DEFAULT '{}', value DOUBLE PRECISION, svalue TEXT,
      PRIMARY KEY (measurement, device, field, tags, ts), CONSTRAINT outage CHECK (false))`);
    e = await startEdge({
      sinks: [{ type: 'embedded' }, { type: 'postgres', url: PG_URL, table }],
      retry: { minMs: 10, maxMs: 100 },
    });
  });
  after(async () => {
    await e?.stop();
    await sql(`DROP TABLE IF EXISTS ${table}`);
  });

  it('keeps retrying through an outage, with the embedded sink unaffected, then delivers everything once', async () => {
    const c = await e.client();
    for (let i = 0; i < 50; i++)
      await c.publishAsync(
        'telemetry/pg-1/env',
        `env,site=gz v=${i},s="x${i}" ${(1767225600000 + i) * 1e6}`,
        { qos: 1 },
      );
    await c.endAsync();
    // The embedded sink has them all while PostgreSQL refuses.
    await until(
      async () =>
        (
          await e.get(
            '/api/edge/query?measurement=env&field=v&device=pg-1&from=1767225600000&to=1767225700000',
          )
        ).body.points?.length === 50,
    );
    const ready = await until(async () => {
      const r = await e.get('/readyz');
      return r.status === 503 ? r : null;
    });
    const pgState = ready.body.components.find((x: { name: string }) => x.name === 'edge:sink:postgres-1');
    assert.equal(pgState.state, 'not_ready');
    assert.match(pgState.detail.lastError, /outage/);
    assert.ok(pgState.detail.backlog > 0);

    await sql(`ALTER TABLE ${table} DROP CONSTRAINT outage`);
    await until(async () => (await e.get('/readyz')).status === 200, 10_000, 'postgres sink recovered');
    await until(
      async () => Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]?.n) === 100,
      10_000,
      '100 rows',
    );
    const rows = await sql<{ field: string; value: number | null; svalue: string | null; tags: object }>(
      `SELECT field, value, svalue, tags FROM ${table} WHERE ts = to_timestamp(1767225600.007) ORDER BY field`,
    );
    assert.deepEqual(rows, [
      { field: 's', value: null, svalue: 'x7', tags: { site: 'gz' } },
      { field: 'v', value: 7, svalue: null, tags: { site: 'gz' } },
    ]);
  });
});
