import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import pg from 'pg';
import { toPostgresPlaceholders } from '../../src/adapters/postgres/placeholders.js';
import {
  createPostgresStore,
  describePostgresUrl,
  type PostgresStoreOptions,
} from '../../src/adapters/postgres/store.js';
import { isKapokError, type KapokError } from '../../src/core/errors.js';
import { serviceAvailable } from '../helpers/services.js';
import { storeConformance } from '../ports/store.conformance.js';

const PG_URL = process.env.KAPOK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `kapok_test_${randomBytes(5).toString('hex')}`;

/** The URL with search_path set to this run's schema for every connection. */
function inSchema(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

async function admin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

const { skip } = await serviceAvailable(
  'postgres',
  () =>
    admin(async (c) => {
      await c.query('SELECT 1');
    }),
  { where: describePostgresUrl(PG_URL) },
);

describe('postgres store (needs PostgreSQL)', { skip }, () => {
  before(() => admin((c) => c.query(`CREATE SCHEMA ${schema}`)));
  const dropSchema = () => admin((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => {});
  after(dropSchema);

  storeConformance('postgres', () => createPostgresStore({ url: inSchema(PG_URL), poolMax: 5 }));

  describe('postgres store adapter', () => {
    it('returns BIGINT and count(*) as numbers while safe, as bigint beyond', async () => {
      const s = await createPostgresStore({ url: inSchema(PG_URL) });
      try {
        assert.deepEqual(
          await s.query('SELECT count(*) AS n, CAST(? AS BIGINT) AS big, CAST(? AS BIGINT) AS small', [
            2n ** 60n,
            '-12',
          ]),
          [{ n: 1, big: 2n ** 60n, small: -12 }],
        );
      } finally {
        await s.close();
      }
    });

    it('cancels a statement that runs past statementTimeoutMs with KAPOK_STORE_QUERY', async () => {
      const s = await createPostgresStore({ url: inSchema(PG_URL), statementTimeoutMs: 100 });
      try {
        await assert.rejects(s.query('SELECT pg_sleep(5)'), (err) => {
          assert.ok(isKapokError(err, 'KAPOK_STORE_QUERY'), String(err));
          assert.match(err.message, /statement timeout 100 ms/);
          return true;
        });
        await s.ping();
      } finally {
        await s.close();
      }
    });

    it('rejects a transaction whose statement failed even when the callback swallowed the error', async () => {
      const s = await createPostgresStore({ url: inSchema(PG_URL) });
      const t = `swallow_${randomBytes(3).toString('hex')}`;
      try {
        await s.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY)`);
        await s.execute(`INSERT INTO ${t} (id) VALUES (1)`);
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.execute(`INSERT INTO ${t} (id) VALUES (2)`);
            await tx.execute(`INSERT INTO ${t} (id) VALUES (1)`).catch(() => {});
          }),
          (err) =>
            isKapokError(err, 'KAPOK_STORE_QUERY') && /rolled the whole transaction back/.test(err.message),
        );
        assert.deepEqual(await s.query(`SELECT id FROM ${t}`), [{ id: 1 }]);
      } finally {
        await s.close();
      }
    });

    it('survives its connections being killed: reports through onError and reconnects', async () => {
      const appName = `kapok-test-${randomBytes(3).toString('hex')}`;
      const errors: KapokError[] = [];
      const s = await createPostgresStore({
        url: inSchema(PG_URL),
        applicationName: appName,
        onError: (err) => errors.push(err),
      });
      try {
        await s.ping(); // leaves an idle connection in the pool
        const killed = await admin((c) =>
          c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
            appName,
          ]),
        );
        assert.ok((killed.rowCount ?? 0) >= 1, 'a pooled connection was found and killed');
        for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(errors.length >= 1, 'onError saw the dropped connection');
        assert.ok(errors.every((e) => isKapokError(e)));
        assert.deepEqual(await s.query('SELECT 1 AS x'), [{ x: 1 }]);
      } finally {
        await s.close();
      }
    });

    it('refuses a connection string pointing at a missing database with KAPOK_STORE_UNAVAILABLE', async () => {
      const u = new URL(PG_URL);
      u.pathname = `/no_such_db_${randomBytes(3).toString('hex')}`;
      await assert.rejects(createPostgresStore({ url: u.toString() }), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_STORE_UNAVAILABLE'), String(err));
        assert.ok(err.message.includes(u.pathname.slice(1)), err.message);
        return true;
      });
    });
  });
});

// These need no running server.
describe('postgres store adapter (no server needed)', () => {
  it('fails fast with KAPOK_STORE_UNAVAILABLE on an unreachable server, without leaking the password', async () => {
    const password = 's3cret-Pa55word';
    const started = Date.now();
    await assert.rejects(
      createPostgresStore({
        url: `postgres://kapok:${password}@127.0.0.1:1/kapokdb`,
        connectTimeoutMs: 2000,
      }),
      (err) => {
        assert.ok(isKapokError(err, 'KAPOK_STORE_UNAVAILABLE'), String(err));
        assert.match(err.message, /127\.0\.0\.1:1\/kapokdb/);
        assert.ok(!inspect(err, { depth: 10 }).includes(password), 'the error leaks the password');
        assert.ok(!JSON.stringify(err.toJSON()).includes(password));
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000, 'gave up within the connect timeout');
  });

  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option, never echoing the URL', async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: '' }, 'url'],
      [{ url: 'not a url with s3cret' }, 'url'],
      [{ url: 'mysql://root:s3cret@db/x' }, 'url'],
      [{ url: 'postgres://h/db', poolMax: 0 }, 'poolMax'],
      [{ url: 'postgres://h/db', connectTimeoutMs: -5 }, 'connectTimeoutMs'],
      [{ url: 'postgres://h/db', statementTimeoutMs: 1.5 }, 'statementTimeoutMs'],
      [{ url: 'postgres://h/db', applicationName: 'x'.repeat(64) }, 'applicationName'],
      [{ url: 'postgres://h/db', onError: 'log' }, 'onError'],
    ];
    for (const [opts, option] of cases) {
      await assert.rejects(createPostgresStore(opts as PostgresStoreOptions), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_CONFIG_INVALID'), String(err));
        assert.match(err.message, new RegExp(`option ${option} `));
        assert.ok(!err.message.includes('s3cret'), err.message);
        return true;
      });
    }
  });

  it('describes a URL without its password', () => {
    assert.equal(describePostgresUrl('postgres://u:pw@db.example:6543/app'), 'db.example:6543/app');
    assert.equal(describePostgresUrl('postgresql://u@10.0.0.1/app?sslmode=require'), '10.0.0.1:5432/app');
  });

  it('rewrites ? placeholders to $n, skipping quotes, dollar quotes and comments', () => {
    const cases: Array<[string, string, number]> = [
      ['SELECT ?', 'SELECT $1', 1],
      ['SELECT ?, ?,?', 'SELECT $1, $2,$3', 3],
      ["SELECT '?', ?", "SELECT '?', $1", 1],
      ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1],
      ["SELECT E'\\' ?', ?", "SELECT E'\\' ?', $1", 1],
      ["SELECT e'a\\\\', ?", "SELECT e'a\\\\', $1", 1],
      ['SELECT "col?" FROM "t""?"', 'SELECT "col?" FROM "t""?"', 0],
      ['SELECT ? -- what?\n, ?', 'SELECT $1 -- what?\n, $2', 2],
      ['SELECT /* a /* nested ? */ ? */ ?', 'SELECT /* a /* nested ? */ ? */ $1', 1],
      ['SELECT $$ ? $$, $tag$ ? $$ ? $tag$, ?', 'SELECT $$ ? $$, $tag$ ? $$ ? $tag$, $1', 1],
      ['SELECT a$b$ FROM t WHERE x = ?', 'SELECT a$b$ FROM t WHERE x = $1', 1],
      ["SELECT 'unterminated ?", "SELECT 'unterminated ?", 0],
      ['SELECT 1', 'SELECT 1', 0],
    ];
    for (const [input, text, count] of cases) {
      assert.deepEqual(toPostgresPlaceholders(input), { text, count }, input);
    }
  });
});
