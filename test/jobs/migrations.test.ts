import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { JOBS_MIGRATIONS } from '../../src/jobs/migrations.js';
import type { Store } from '../../src/ports/store.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { tmpDir } from '../helpers/tmp.js';

/** 0004 on a database holding a job from before it: the spec moves to job_specs, the job stays. */
async function upgrade(open: () => Promise<Store>): Promise<void> {
  const before4 = JOBS_MIGRATIONS.filter((m) => m.id < 'jobs/0004');
  assert.equal(before4.length, JOBS_MIGRATIONS.length - 1);
  let store = await open();
  await store.migrate(before4);
  await store.execute(
    `INSERT INTO jobs (id, name, state, priority, deadline, spec, open_tasks, created_at)
     VALUES ('j1', 'old', 'running', 'normal', NULL, '{"name":"old"}', 3, 1)`,
  );
  await store.close();
  store = await open();
  try {
    assert.deepEqual(await store.migrate(JOBS_MIGRATIONS), ['jobs/0004_job_specs']);
    assert.deepEqual(await store.query('SELECT job_id, spec FROM job_specs'), [
      { job_id: 'j1', spec: '{"name":"old"}' },
    ]);
    await assert.rejects(store.query('SELECT spec FROM jobs'), /spec/);
    assert.deepEqual(await store.query('SELECT id, state, open_tasks FROM jobs'), [
      { id: 'j1', state: 'running', open_tasks: 3 },
    ]);
  } finally {
    await store.close();
  }
}

const { schema, url } = pgSchema('kapok_jobs_mig');
const { skip } = await postgresGate();

describe('jobs migrations', () => {
  it('0004 on SQLite', async () => {
    const file = join(tmpDir('kapok-jobs-mig-'), 'k.db');
    await upgrade(() => createSqliteStore({ file }));
  });

  describe('on PostgreSQL', { skip }, () => {
    before(() => pgAdmin(`CREATE SCHEMA ${schema}`));
    after(() => pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    it('0004 on PostgreSQL', () => upgrade(() => createPostgresStore({ url, poolMax: 2 })));
  });
});
