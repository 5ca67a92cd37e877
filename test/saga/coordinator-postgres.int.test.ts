import { after, before, describe } from 'node:test';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { coordinatorSuite } from './coordinator.suite.js';

const { skip } = await postgresGate();
const coord = pgSchema('kapok_saga');
const bank = pgSchema('kapok_saga_bank');

describe('saga on PostgreSQL', { skip }, () => {
  before(async () => {
    await pgAdmin(`CREATE SCHEMA ${coord.schema}`);
    await pgAdmin(`CREATE SCHEMA ${bank.schema}`);
  });
  after(async () => {
    await pgAdmin(`DROP SCHEMA IF EXISTS ${coord.schema} CASCADE`);
    await pgAdmin(`DROP SCHEMA IF EXISTS ${bank.schema} CASCADE`);
  });
  coordinatorSuite('postgres', async () => {
    const c = await createPostgresStore({ url: coord.url, poolMax: 8 });
    const b = await createPostgresStore({ url: bank.url, poolMax: 8 });
    return {
      coordinator: c,
      bank: b,
      close: async () => {
        await c.close();
        await b.close();
      },
    };
  });
});
