import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { JOBS_MIGRATIONS } from '../../src/jobs/migrations.js';
import { getJob } from '../../src/jobs/queries.js';
import type { Store } from '../../src/ports/store.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { claim, finish, submit, T0, transitionsSuite } from './transitions.suite.js';

/**
 * The scheduler's Store behaviour on PostgreSQL, and several schedulers sharing one database: each
 * with its own pool (as separate processes have), claiming with FOR UPDATE SKIP LOCKED.
 */
const { schema, url } = pgSchema('kapok_jobs');
const { skip } = await postgresGate();

describe('jobs on PostgreSQL', { skip }, () => {
  before(() => pgAdmin(`CREATE SCHEMA ${schema}`));
  after(() => pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  transitionsSuite('postgres', () => createPostgresStore({ url, poolMax: 4 }));

  it('three schedulers with their own pools run 1,000 tasks: none twice, none lost', async () => {
    const stores: Store[] = await Promise.all([0, 1, 2].map(() => createPostgresStore({ url, poolMax: 3 })));
    try {
      await Promise.all(stores.map((s) => s.migrate(JOBS_MIGRATIONS)));
      const tasks = [
        { name: 'root', run: { executor: 'noop' } },
        ...Array.from({ length: 998 }, (_, i) => ({
          name: `w${i}`,
          needs: ['root'],
          run: { executor: 'noop' },
        })),
      ];
      tasks.push({ name: 'sink', needs: tasks.slice(1).map((t) => t.name), run: { executor: 'noop' } });
      const id = await submit(stores[0] as Store, { name: 'fan', tasks }, T0);
      const ran = new Map<string, string[]>();
      // Each scheduler claims up to 16 at a time and finishes them, until the job is over.
      const worker = async (s: Store, owner: string) => {
        for (let round = 0; round < 10_000; round++) {
          const { claims } = await claim(s, T0 + 1000 + round, {
            owner,
            capacity: { gpus: [], cpu: 64, memoryMiB: 0, slots: 16 },
          });
          const mine = claims.filter((c) => c.jobId === id);
          for (const c of mine) {
            ran.set(c.task, [...(ran.get(c.task) ?? []), owner]);
            await finish(s, c, { ok: true }, T0 + 1000 + round);
          }
          const [j] = await s.query<{ state: string }>('SELECT state FROM jobs WHERE id = ?', [id]);
          if (j?.state === 'succeeded') return;
          if (mine.length === 0) await new Promise((r) => setTimeout(r, 2));
        }
      };
      await Promise.all(stores.map((s, i) => worker(s, `kapok-${i}`)));
      const job = await getJob(stores[0] as Store, id);
      assert.equal(job?.state, 'succeeded');
      assert.equal(ran.size, 1000, 'every task ran');
      const twice = [...ran].filter(([, by]) => by.length > 1);
      assert.deepEqual(twice, [], 'no task ran twice');
      assert.ok(job?.tasks.every((t) => t.attempts.length === 1 && t.attempts[0]?.state === 'succeeded'));
      const owners = new Set([...ran.values()].flat());
      assert.ok(owners.size >= 2, `work was shared: ${[...owners].join(', ')}`);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
