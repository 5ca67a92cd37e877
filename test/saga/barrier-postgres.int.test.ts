import { after, before, describe } from 'node:test';
import pg from 'pg';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { pgExecutor } from '../../src/saga/barrier.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { barrierSuite } from './barrier.suite.js';

const { skip } = await postgresGate();
const a = pgSchema('kapok_barrier');
const b = pgSchema('kapok_barrier_raw');

describe('saga barrier on PostgreSQL', { skip }, () => {
  before(async () => {
    await pgAdmin(`CREATE SCHEMA ${a.schema}`);
    await pgAdmin(`CREATE SCHEMA ${b.schema}`);
  });
  after(async () => {
    await pgAdmin(`DROP SCHEMA IF EXISTS ${a.schema} CASCADE`);
    await pgAdmin(`DROP SCHEMA IF EXISTS ${b.schema} CASCADE`);
  });

  barrierSuite('postgres (Store port)', async () => {
    const store = await createPostgresStore({ url: a.url, poolMax: 4 });
    return {
      close: () => store.close(),
      setup: async (sql) => void (await store.execute(sql)),
      run: (fn) => store.transaction((tx) => fn(tx)),
      applied: async (gid) =>
        Number(
          (await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM biz WHERE gid = ?', [gid]))[0]?.n,
        ),
    };
  });

  // A bare pg pool, as any Node service would hold one: BEGIN … COMMIT on one client.
  barrierSuite('postgres (pg Pool)', async () => {
    const pool = new pg.Pool({ connectionString: b.url, max: 4 });
    return {
      close: () => pool.end(),
      setup: async (sql) => void (await pool.query(sql)),
      run: async (fn) => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          const out = await fn(pgExecutor(c));
          await c.query('COMMIT');
          return out;
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        } finally {
          c.release();
        }
      },
      applied: async (gid) =>
        Number((await pool.query('SELECT COUNT(*) AS n FROM biz WHERE gid = $1', [gid])).rows[0].n),
    };
  });
});
