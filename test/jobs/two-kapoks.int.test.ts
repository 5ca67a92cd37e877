import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kapokUp } from '../helpers/cli.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Two `kapok up` processes on one PostgreSQL schedule one 1,000-task DAG (fan-out, fan-in): the
 * ledger holds one attempt per task, both instances took work, and the 100 tasks that are real
 * processes (every tenth; process spawns cost ~100 ms each on a loaded 2-core box) each ran exactly
 * once by the shared log they append to.
 */
const { schema, url } = pgSchema('kapok_jobs2');
const { skip } = await postgresGate();

describe('jobs: two kapok up on one PostgreSQL', { skip }, () => {
  before(() => pgAdmin(`CREATE SCHEMA ${schema}`));
  after(() => pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  it('1,000 tasks, none runs twice', async () => {
    const shared = tmpDir('kapok-jobs-2k-');
    const log = join(shared, 'runs.log');
    const env = (n: number) => ({
      KAPOK_DATA_DIR: join(shared, `k${n}`),
      KAPOK_STORE__DRIVER: 'postgres',
      KAPOK_STORE__URL: url,
      KAPOK_JOBS__ENABLED: 'true',
      KAPOK_JOBS__POLL_MS: '20',
      KAPOK_JOBS__WORKER__GPUS: 'none',
      KAPOK_JOBS__WORKER__SLOTS: '6',
    });
    const [a, b] = await Promise.all([kapokUp(env(1), [], 90_000), kapokUp(env(2), [], 90_000)]);
    try {
      const proc = {
        executor: 'process',
        command: ['sh', '-c', 'echo "$TASK $ATTEMPT" >> "$LOG"'],
        env: { LOG: log },
      };
      const noop = { executor: 'noop' };
      const tasks: Array<{ name: string; needs?: string[]; run: object }> = [
        { name: 'root', run: proc },
        ...Array.from({ length: 998 }, (_, i) => ({
          name: `w${i}`,
          needs: ['root'],
          run: i % 10 === 0 ? proc : noop,
        })),
      ];
      tasks.push({ name: 'sink', needs: tasks.slice(1).map((t) => t.name), run: proc });
      const res = await fetch(`http://127.0.0.1:${a.port}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'fan-1000', tasks }),
      });
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      type Job = {
        state: string;
        tasks: Array<{ name: string; attempts: Array<{ owner: string; state: string }> }>;
      };
      let job: Job | undefined;
      const end = Date.now() + 400_000;
      for (;;) {
        // Read through the other instance: the Store is one.
        job = (await (await fetch(`http://127.0.0.1:${b.port}/api/jobs/${id}`)).json()) as Job;
        if (['succeeded', 'failed', 'cancelled'].includes(job.state)) break;
        if (Date.now() > end) assert.fail(`job still ${job.state}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.equal(job.state, 'succeeded');
      const lines = readFileSync(log, 'utf8').trim().split('\n');
      assert.equal(lines.length, 102, 'one run per process task');
      assert.equal(new Set(lines.map((l) => l.split(' ')[0])).size, 102);
      assert.ok(
        lines.every((l) => l.endsWith(' 1')),
        'every task on its first attempt',
      );
      assert.ok(job.tasks.every((t) => t.attempts.length === 1 && t.attempts[0]?.state === 'succeeded'));
      const owners = new Map<string, number>();
      for (const t of job.tasks) {
        const o = t.attempts[0]?.owner as string;
        owners.set(o, (owners.get(o) ?? 0) + 1);
      }
      assert.equal(owners.size, 2, `both instances ran tasks: ${JSON.stringify([...owners])}`);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
    }
  });
});
