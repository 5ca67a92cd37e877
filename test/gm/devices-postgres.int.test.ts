import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPostgresStore, describePostgresUrl } from '../../src/adapters/postgres/store.js';
import { serviceAvailable } from '../helpers/services.js';
import { rotationFlow } from './rotation-flow.js';

const PG_URL = process.env.KAPOK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `kapok_gm_${randomBytes(5).toString('hex')}`;
const inSchema = (url: string) =>
  `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const { skip } = await serviceAvailable('postgres', () => admin('SELECT 1'), {
  where: describePostgresUrl(PG_URL),
});

describe('gm devices and key rotation on PostgreSQL', { skip }, () => {
  before(() => admin(`CREATE SCHEMA ${schema}`));
  after(() => admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  it('registers, authenticates, rotates and reissues with the same SQL as on SQLite', async () => {
    const store = await createPostgresStore({ url: inSchema(PG_URL), poolMax: 3 });
    try {
      await rotationFlow(store);
    } finally {
      await store.close();
    }
  });
});
