import { after, before, describe, it } from 'node:test';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { rollupFlow } from './usage-rollup-flow.js';

const { schema, url } = pgSchema('kapok_rollup');
const { skip } = await postgresGate();

describe('gateway usage per-minute sums on PostgreSQL', { skip }, () => {
  before(() => pgAdmin(`CREATE SCHEMA ${schema}`));
  after(() => pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  it('back-fills, keeps up with the writer, and answers series as the raw rows do', async () => {
    const store = await createPostgresStore({ url, poolMax: 3 });
    try {
      await rollupFlow(store);
    } finally {
      await store.close();
    }
  });
});
