import { after, before, describe, it } from 'node:test';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { rotationFlow } from './rotation-flow.js';

const { schema, url: schemaUrl } = pgSchema('kapok_gm');
const admin = pgAdmin;
const { skip } = await postgresGate();

describe('gm devices and key rotation on PostgreSQL', { skip }, () => {
  before(() => admin(`CREATE SCHEMA ${schema}`));
  after(() => admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  it('registers, authenticates, rotates and reissues with the same SQL as on SQLite', async () => {
    const store = await createPostgresStore({ url: schemaUrl, poolMax: 3 });
    try {
      await rotationFlow(store);
    } finally {
      await store.close();
    }
  });
});
