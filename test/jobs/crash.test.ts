import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { kapokUp } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * A `kapok up` SIGKILLed halfway through a 200-task DAG of real processes, then started again on
 * the same dataDir: the job completes, each task succeeds exactly once in the attempt ledger, no
 * task that had succeeded runs again, no attempt starts twice, the processes orphaned by the kill
 * are stopped before their tasks run again, and checkpointed tasks resume from their checkpoint.
 */

const WIDTH = 10;
const LAYERS = 20;
const LONG = 10; // layer whose tasks checkpoint and run long: the kill lands while they run

function spec(log: string) {
  const tasks = [];
  for (let l = 0; l < LAYERS; l++)
    for (let i = 0; i < WIDTH; i++) {
      const long = l === LONG;
      const body = long
        ? [
            'if [ -n "$CHECKPOINT_FILE" ]; then echo "resumed $TASK $ATTEMPT $(cat "$CHECKPOINT_FILE")" >> "$LOG"; else',
            `  echo '::kapok-checkpoint:: {"data":"'$(printf "half-of-$TASK" | base64)'"}'`,
            '  sleep 0.3; echo "ckpt $TASK $ATTEMPT" >> "$LOG"',
            // Long until the restart (the kill lands while they run), short after it.
            '  if [ ! -e "$LOG.restarted" ]; then sleep 30; fi',
            'fi',
          ].join('\n')
        : 'sleep 0.02';
      tasks.push({
        name: `t${l}-${i}`,
        needs: l === 0 ? [] : [`t${l - 1}-${i}`, `t${l - 1}-${(i + 1) % WIDTH}`],
        run: {
          executor: 'process',
          command: [
            'sh',
            '-c',
            `echo "start $TASK $ATTEMPT" >> "$LOG"\n${body}\necho "end $TASK $ATTEMPT" >> "$LOG"`,
          ],
          env: { LOG: log },
        },
        ...(long ? { checkpoint: { everyS: 1 } } : {}),
      });
    }
  return { name: 'crash-200', tasks };
}

const ENV = (dataDir: string) => ({
  KAPOK_DATA_DIR: dataDir,
  KAPOK_JOBS__ENABLED: 'true',
  KAPOK_JOBS__POLL_MS: '50',
  KAPOK_JOBS__LEASE_S: '3',
  KAPOK_JOBS__HEARTBEAT_S: '0.5',
  KAPOK_JOBS__WORKER__GPUS: 'none',
  KAPOK_JOBS__WORKER__SLOTS: '8',
});

const lines = (log: string) => {
  try {
    return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('jobs: crash recovery with a real kapok process', () => {
  it('SIGKILL halfway through 200 tasks, restart: every task completes exactly once; checkpointed ones resume', async () => {
    const dataDir = tmpDir('kapok-jobs-crash-');
    const log = join(dataDir, 'tasks.log');
    const first = await kapokUp(ENV(dataDir), [], 60_000);
    const res = await fetch(`http://127.0.0.1:${first.port}/api/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(spec(log)),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    await until(
      'three checkpointed tasks mid-run',
      () => lines(log).filter((l) => l.startsWith('ckpt ')).length >= 3,
    );
    first.child.kill('SIGKILL');
    await first.exited;

    // What the ledger had committed when the scheduler died.
    const peek = await createSqliteStore({ file: join(dataDir, 'kapok.db') });
    const doneBefore = new Map(
      (
        await peek.query<{ task: string; attempt: number }>(
          "SELECT task, attempt FROM job_attempts WHERE job_id = ? AND state = 'succeeded'",
          [id],
        )
      ).map((r) => [r.task, Number(r.attempt)]),
    );
    await peek.close();
    const ckptBefore = lines(log)
      .filter((l) => l.startsWith('ckpt '))
      .map((l) => l.split(' ')[1] as string);
    assert.ok(
      doneBefore.size >= LONG * WIDTH && doneBefore.size < LAYERS * WIDTH,
      `halfway: ${doneBefore.size} done`,
    );

    writeFileSync(`${log}.restarted`, '');
    const second = await kapokUp(ENV(dataDir), [], 60_000);
    try {
      let job:
        | {
            state: string;
            tasks: Array<{
              name: string;
              state: string;
              attempts: Array<{ attempt: number; state: string }>;
            }>;
          }
        | undefined;
      await until(
        'the job to finish after the restart',
        async () => {
          const r = await fetch(`http://127.0.0.1:${second.port}/api/jobs/${id}`);
          job = (await r.json()) as typeof job;
          return ['succeeded', 'failed', 'cancelled'].includes(job?.state ?? '');
        },
        120_000,
      );
      assert.equal(
        job?.state,
        'succeeded',
        JSON.stringify(job?.tasks.filter((t) => t.state !== 'succeeded')),
      );
      const all = lines(log);
      const starts = all.filter((l) => l.startsWith('start '));
      assert.equal(new Set(starts).size, starts.length, 'an attempt started twice');
      for (const t of job?.tasks ?? []) {
        const ok = t.attempts.filter((a) => a.state === 'succeeded');
        assert.equal(ok.length, 1, `${t.name}: ${JSON.stringify(t.attempts)}`);
        const before = doneBefore.get(t.name);
        if (before !== undefined) {
          // Succeeded before the kill: never started again.
          assert.deepEqual(
            starts.filter((s) => s.startsWith(`start ${t.name} `)),
            [`start ${t.name} ${before}`],
          );
        }
      }
      // Checkpointed tasks that were cut off resumed from their checkpoint, in a new attempt, and
      // the orphaned first attempts were stopped (none of them ever ended).
      for (const name of ckptBefore) {
        if (doneBefore.has(name)) continue;
        assert.ok(
          all.includes(`resumed ${name} 2 half-of-${name}`),
          `${name} did not resume: ${all.filter((l) => l.includes(name)).join(' | ')}`,
        );
        assert.ok(!all.includes(`end ${name} 1`), `${name}'s orphaned attempt 1 ran on`);
      }
      assert.equal(all.filter((l) => l.startsWith('end ')).length >= LAYERS * WIDTH, true);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
