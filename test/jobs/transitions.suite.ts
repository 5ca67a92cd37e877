import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isKapokError } from '../../src/core/errors.js';
import { type Capacity, DEFAULT_WEIGHTS } from '../../src/jobs/core.js';
import { JOBS_MIGRATIONS } from '../../src/jobs/migrations.js';
import { PULL_EXECUTORS } from '../../src/jobs/pull.js';
import { addCheckpoint, checkCheckpoint, getJob, latestCheckpoint } from '../../src/jobs/queries.js';
import { validateSpec } from '../../src/jobs/spec.js';
import { submitJob } from '../../src/jobs/submit.js';
import {
  type AttemptResult,
  type Claim,
  cancelJob,
  cancelTask,
  claimTasks,
  type Effects,
  findLost,
  finishAttempt,
  finishAttempts,
  renewLeases,
  retryJob,
} from '../../src/jobs/transitions.js';
import type { Store } from '../../src/ports/store.js';

/**
 * The Store-facing behaviour of the scheduler, run against every Store adapter (SQLite in
 * transitions.test.ts, PostgreSQL in postgres.int.test.ts), on a fake clock.
 */
export const T0 = Date.parse('2026-12-01T00:00:00Z');
const LIMITS = { gpus: 8, gpuMemoryMiB: 81920, cpu: 64, memoryMiB: 0 };
export const CAP: Capacity = { gpus: [], cpu: 64, memoryMiB: 0, slots: 100 };
const W = DEFAULT_WEIGHTS;
const ok: AttemptResult = { ok: true };
const fail = (code = 1): AttemptResult => ({
  ok: false,
  failure: { class: 'exit', exitCode: code },
  reason: `exited with code ${code}`,
});

export async function submit(
  store: Store,
  spec: unknown,
  now = T0,
  maxPendingTasks = 100_000,
): Promise<string> {
  return submitJob(store, validateSpec(spec, LIMITS, now), { weights: W, maxPendingTasks, now });
}

export function claim(
  store: Store,
  now: number,
  o: { owner?: string; capacity?: Capacity; leaseMs?: number } = {},
) {
  return claimTasks(store, {
    owner: o.owner ?? 'w1',
    capacity: o.capacity ?? CAP,
    now,
    weights: W,
    rand: 0.5,
    leaseMs: o.leaseMs ?? 30_000,
    candidates: 256,
    max: (o.capacity ?? CAP).slots,
  });
}

export const finish = (store: Store, c: Claim, res: AttemptResult, now: number) =>
  finishAttempt(store, c, res, { weights: W, now, rand: 0.5 });

const noop = { executor: 'noop' };
const names = (cs: Claim[]) => cs.map((c) => c.task).sort();

export function transitionsSuite(label: string, open: () => Promise<Store>): void {
  describe(`jobs on the Store (${label})`, () => {
    let store: Store;
    before(async () => {
      store = await open();
      await store.migrate(JOBS_MIGRATIONS);
    });
    after(() => store.close());

    it('runs a DAG in dependency order and records one attempt per task', async () => {
      const id = await submit(store, {
        name: 'diamond',
        tasks: [
          { name: 'a', run: noop },
          { name: 'b', needs: ['a'], run: noop },
          { name: 'c', needs: ['a'], run: noop },
          { name: 'd', needs: ['b', 'c'], run: noop },
        ],
      });
      let job = await getJob(store, id);
      assert.equal(job?.state, 'queued');
      const r1 = await claim(store, T0);
      assert.deepEqual(names(r1.claims.filter((c) => c.jobId === id)), ['a']);
      assert.equal((await getJob(store, id))?.state, 'running');
      const a = r1.claims.find((c) => c.jobId === id) as Claim;
      assert.deepEqual(
        await claim(store, T0 + 1).then((r) => r.claims.filter((c) => c.jobId === id)),
        [],
        'a is running: nothing else is ready',
      );
      await finish(store, a, ok, T0 + 10);
      const r2 = (await claim(store, T0 + 20)).claims.filter((c) => c.jobId === id);
      assert.deepEqual(names(r2), ['b', 'c']);
      await finish(store, r2[0] as Claim, ok, T0 + 30);
      assert.deepEqual(
        (await claim(store, T0 + 31)).claims.filter((c) => c.jobId === id),
        [],
        'd needs both',
      );
      await finish(store, r2[1] as Claim, ok, T0 + 40);
      const [d] = (await claim(store, T0 + 50)).claims.filter((c) => c.jobId === id);
      assert.equal(d?.task, 'd');
      const e = await finish(store, d as Claim, ok, T0 + 60);
      assert.deepEqual(e.jobFinished, { jobId: id, state: 'succeeded' });
      job = await getJob(store, id);
      assert.equal(job?.state, 'succeeded');
      assert.deepEqual(
        job?.tasks.map((t) => [t.name, t.state, t.attempts.length]),
        [
          ['a', 'succeeded', 1],
          ['b', 'succeeded', 1],
          ['c', 'succeeded', 1],
          ['d', 'succeeded', 1],
        ],
      );
      // A finished attempt is settled once: a late second report changes nothing.
      assert.deepEqual(await finish(store, d as Claim, fail(), T0 + 70), {});
      assert.equal((await getJob(store, id))?.tasks[3]?.state, 'succeeded');
    });

    it('retries with capped backoff on the fake clock, then fails the job and skips what is left', async () => {
      const id = await submit(store, {
        name: 'flaky',
        tasks: [
          {
            name: 'train',
            run: noop,
            retry: { maxAttempts: 3, backoff: { baseS: 10, factor: 3, maxS: 20, jitter: 0 } },
          },
          { name: 'eval', needs: ['train'], run: noop },
        ],
      });
      let now = T0 + 1000;
      let [c] = (await claim(store, now)).claims.filter((x) => x.jobId === id);
      assert.equal(c?.attemptInRun, 1);
      let e = await finish(store, c as Claim, fail(), now + 5);
      assert.equal(e.retried?.at, now + 5 + 10_000, 'first retry waits baseS');
      assert.equal((await getJob(store, id))?.tasks[0]?.state, 'retrying');
      assert.deepEqual(
        (await claim(store, now + 5 + 9_999)).claims.filter((x) => x.jobId === id),
        [],
        'not before the wait ends',
      );
      now = now + 5 + 10_000;
      [c] = (await claim(store, now)).claims.filter((x) => x.jobId === id);
      assert.equal(c?.attemptInRun, 2);
      e = await finish(store, c as Claim, fail(), now);
      assert.equal(e.retried?.at, now + 20_000, 'base·factor = 30 s, capped at maxS 20 s');
      now += 20_000;
      [c] = (await claim(store, now)).claims.filter((x) => x.jobId === id);
      assert.equal(c?.attemptInRun, 3);
      e = await finish(store, c as Claim, fail(2), now);
      assert.equal(e.retried, undefined, 'no backoff after the last attempt');
      assert.equal(e.taskFailed?.task, 'train');
      assert.match(e.taskFailed?.reason ?? '', /exited with code 2 \(attempt 3 of 3\)/);
      assert.deepEqual(e.jobFinished, { jobId: id, state: 'failed' });
      const job = await getJob(store, id);
      assert.deepEqual(
        job?.tasks.map((t) => t.state),
        ['failed', 'skipped'],
      );
      assert.deepEqual(
        job?.tasks[0]?.attempts.map((a) => [a.attempt, a.state, a.exitCode]),
        [
          [1, 'failed', 1],
          [2, 'failed', 1],
          [3, 'failed', 2],
        ],
      );
    });

    it('onFailure: continue lets dependents run; the failure is still reported', async () => {
      const id = await submit(store, {
        name: 'tolerant',
        tasks: [
          { name: 'optional', run: noop, onFailure: 'continue' },
          { name: 'next', needs: ['optional'], run: noop },
        ],
      });
      const [c] = (await claim(store, T0 + 2000)).claims.filter((x) => x.jobId === id);
      const e = await finish(store, c as Claim, fail(), T0 + 2001);
      assert.equal(e.taskFailed?.task, 'optional');
      const [n] = (await claim(store, T0 + 2002)).claims.filter((x) => x.jobId === id);
      assert.equal(n?.task, 'next');
      const e2 = await finish(store, n as Claim, ok, T0 + 2003);
      assert.deepEqual(e2.jobFinished, { jobId: id, state: 'succeeded' });
    });

    it('cancels a job from any state: queued and running tasks alike; its lease is gone', async () => {
      const id = await submit(store, {
        name: 'cancel-me',
        tasks: [
          { name: 'long', run: noop },
          { name: 'later', needs: ['long'], run: noop },
        ],
      });
      const [c] = (await claim(store, T0 + 3000)).claims.filter((x) => x.jobId === id);
      assert.ok(c);
      const e = await cancelJob(store, id, T0 + 3001);
      assert.deepEqual(e?.jobFinished, { jobId: id, state: 'cancelled' });
      assert.deepEqual(
        await renewLeases(store, 'w1', [c], T0 + 40_000),
        [c],
        'the executor learns it must stop',
      );
      assert.deepEqual(await finish(store, c, ok, T0 + 3002), {}, 'a late success does not revive it');
      const job = await getJob(store, id);
      assert.equal(job?.state, 'cancelled');
      assert.deepEqual(
        job?.tasks.map((t) => t.state),
        ['cancelled', 'cancelled'],
      );
      assert.equal(job?.tasks[0]?.attempts[0]?.state, 'cancelled');
      assert.deepEqual(await cancelJob(store, id, T0 + 3003), {}, 'cancelling again changes nothing');
      assert.equal(await cancelJob(store, '00000000-0000-0000-0000-000000000000', T0), null);
    });

    it('cancels one task: its downstream is skipped, the rest goes on', async () => {
      const id = await submit(store, {
        name: 'partial',
        tasks: [
          { name: 'a', run: noop },
          { name: 'b', needs: ['a'], run: noop },
          { name: 'c', needs: ['b'], run: noop },
          { name: 'side', run: noop },
        ],
      });
      const e = await cancelTask(store, id, 'a', T0 + 4000);
      assert.equal(e?.jobFinished, undefined);
      const [s] = (await claim(store, T0 + 4001)).claims.filter((x) => x.jobId === id);
      assert.equal(s?.task, 'side');
      const e2 = await finish(store, s as Claim, ok, T0 + 4002);
      assert.deepEqual(e2.jobFinished, { jobId: id, state: 'cancelled' });
      assert.deepEqual(
        (await getJob(store, id))?.tasks.map((t) => t.state),
        ['cancelled', 'skipped', 'skipped', 'succeeded'],
      );
      assert.equal(await cancelTask(store, id, 'nope', T0), null);
    });

    it('retries a failed job: unsucceeded tasks run again with a fresh budget, succeeded ones keep their result', async () => {
      const id = await submit(store, {
        name: 'again',
        tasks: [
          { name: 'a', run: noop },
          { name: 'b', needs: ['a'], run: noop },
          { name: 'c', needs: ['b'], run: noop },
        ],
      });
      const [a] = (await claim(store, T0 + 5000)).claims.filter((x) => x.jobId === id);
      await finish(store, a as Claim, ok, T0 + 5001);
      const [b] = (await claim(store, T0 + 5002)).claims.filter((x) => x.jobId === id);
      await finish(store, b as Claim, fail(), T0 + 5003);
      assert.equal((await getJob(store, id))?.state, 'failed');
      const r = await retryJob(store, id, { weights: W, now: T0 + 6000, rand: 0.5 });
      assert.deepEqual(r, { state: 'running', requeued: 2 });
      const [b2] = (await claim(store, T0 + 6001)).claims.filter((x) => x.jobId === id);
      assert.deepEqual([b2?.task, b2?.attempt, b2?.attemptInRun], ['b', 2, 1]);
      await finish(store, b2 as Claim, ok, T0 + 6002);
      const [c] = (await claim(store, T0 + 6003)).claims.filter((x) => x.jobId === id);
      const e = await finish(store, c as Claim, ok, T0 + 6004);
      assert.deepEqual(e.jobFinished, { jobId: id, state: 'succeeded' });
      assert.deepEqual(
        (await getJob(store, id))?.tasks.map((t) => t.attempts.length),
        [1, 2, 1],
      );
      assert.deepEqual(await retryJob(store, id, { weights: W, now: T0, rand: 0.5 }), {
        state: 'succeeded',
        requeued: 0,
      });
    });

    it('a lost lease makes the task retry as class lost (a dead worker)', async () => {
      const id = await submit(store, {
        name: 'lease',
        tasks: [{ name: 'x', run: noop, retry: { maxAttempts: 2, backoff: { baseS: 0, jitter: 0 } } }],
      });
      const [c] = (await claim(store, T0 + 7000, { owner: 'dead', leaseMs: 1000 })).claims.filter(
        (x) => x.jobId === id,
      );
      assert.ok(c);
      assert.deepEqual(
        (await findLost(store, T0 + 7500, null)).filter((l) => l.jobId === id),
        [],
      );
      const lost = (await findLost(store, T0 + 8001, null)).filter((l) => l.jobId === id);
      assert.deepEqual(
        lost.map((l) => [l.task, l.attempt, l.owner]),
        [['x', 1, 'dead']],
      );
      const e = await finish(
        store,
        lost[0] as unknown as Claim,
        { ok: false, failure: { class: 'lost' }, reason: 'lease lost' },
        T0 + 8001,
      );
      assert.ok(e.retried);
      // The dead worker's late report is ignored; the retry is a new attempt.
      assert.deepEqual(await finish(store, c, ok, T0 + 8002), {});
      const [c2] = (await claim(store, T0 + 8003, { owner: 'alive' })).claims.filter((x) => x.jobId === id);
      assert.equal(c2?.attempt, 2);
      // At start, an owner's own running attempts are lost at once (it restarted).
      assert.deepEqual(
        (await findLost(store, T0 + 8004, 'alive')).filter((l) => l.jobId === id).map((l) => l.attempt),
        [2],
      );
    });

    it('fails a task that cannot finish before the deadline instead of starting it', async () => {
      const id = await submit(store, {
        name: 'late',
        deadline: new Date(T0 + 60_000).toISOString(),
        tasks: [{ name: 'slow', run: noop, expectedS: 120 }],
      });
      const r = await claim(store, T0 + 9000);
      assert.deepEqual(
        r.claims.filter((x) => x.jobId === id),
        [],
      );
      const e = r.effects.find((x) => x.taskFailed?.jobId === id);
      assert.match(e?.taskFailed?.reason ?? '', /^deadline: cannot finish before 2026-12-01T00:01:00.000Z/);
      assert.equal(e?.jobFinished?.state, 'failed');
    });

    it('fits GPUs: a second GPU task waits for the GPU, a CPU task does not', async () => {
      const id = await submit(store, {
        name: 'gpu',
        tasks: [
          { name: 'g1', run: noop, resources: { gpus: 1, gpuMemoryMiB: 1000 } },
          { name: 'g2', run: noop, resources: { gpus: 1, gpuMemoryMiB: 1000 } },
          { name: 'cpu', run: noop },
        ],
      });
      const cap: Capacity = { gpus: [{ index: 3, freeMiB: 16_000 }], cpu: 8, memoryMiB: 0, slots: 8 };
      const r = (await claim(store, T0 + 10_000, { capacity: cap })).claims.filter((x) => x.jobId === id);
      assert.deepEqual(r.map((c) => [c.task, c.gpus]).sort(), [
        ['cpu', []],
        ['g1', [3]],
      ]);
      await cancelJob(store, id, T0 + 10_001);
    });

    it('keeps checkpoints, hands back the newest, refuses oversized ones', async () => {
      const id = await submit(store, { name: 'ckpt', tasks: [{ name: 't', run: noop }] });
      for (let i = 1; i <= 4; i++)
        await addCheckpoint(store, id, 't', 1, { data: Buffer.from(`step-${i}`) }, T0 + i);
      const c = await latestCheckpoint(store, id, 't');
      assert.equal(c?.seq, 4);
      assert.equal(c?.data?.toString(), 'step-4');
      assert.match(c?.sm3 ?? '', /^[0-9a-f]{64}$/);
      const [n] = await store.query<{ n: unknown }>(
        'SELECT COUNT(*) AS n FROM job_checkpoints WHERE job_id = ?',
        [id],
      );
      assert.equal(Number(n?.n), 3, 'older ones pruned');
      await addCheckpoint(
        store,
        id,
        't',
        1,
        checkCheckpoint({ uri: 's3://b/k', sm3: 'AB'.repeat(32) }),
        T0 + 9,
      );
      assert.deepEqual(
        [(await latestCheckpoint(store, id, 't'))?.uri, (await latestCheckpoint(store, id, 't'))?.sm3],
        ['s3://b/k', 'ab'.repeat(32)],
      );
      const bad = (v: unknown) =>
        assert.throws(
          () => checkCheckpoint(v),
          (e: unknown) => isKapokError(e, 'KAPOK_JOBS_CHECKPOINT_INVALID'),
        );
      bad({ data: Buffer.alloc(1024 * 1024 + 1).toString('base64') });
      bad({ uri: 's3://b/k' });
      bad({ uri: 's3://b/k', sm3: 'zz' });
      bad(null);
      bad({ uri: 'x'.repeat(3000), sm3: 'ab'.repeat(32) });
      await cancelJob(store, id, T0);
    });

    it('the ledger refuses a second start of one attempt; the queue has a limit', async () => {
      const id = await submit(store, { name: 'ledger', tasks: [{ name: 't', run: noop }] });
      const [c] = (await claim(store, T0 + 11_000)).claims.filter((x) => x.jobId === id);
      await assert.rejects(
        store.execute(
          `INSERT INTO job_attempts (job_id, task, attempt, owner, gpus, state, started_at) VALUES (?, ?, ?, 'x', '[]', 'running', 0)`,
          [id, 't', c?.attempt ?? 1],
        ),
        (e: unknown) => isKapokError(e, 'KAPOK_STORE_CONFLICT'),
      );
      await cancelJob(store, id, T0);
      await assert.rejects(
        submit(
          store,
          {
            name: 'big',
            tasks: [
              { name: 'a', run: noop },
              { name: 'b', run: noop },
            ],
          },
          T0,
          1,
        ),
        (e: unknown) =>
          isKapokError(e, 'KAPOK_JOBS_QUEUE_FULL') && /jobs.maxPendingTasks \(1\)/.test(e.message),
      );
    });

    it('a short first page still finds a deadline task further down, and a task that fits further down', async () => {
      // Alone in the queue: the earlier tests' leftovers would take the top of the page.
      for (const t of ['job_attempts', 'job_tasks', 'jobs']) await store.execute(`DELETE FROM ${t}`);
      const many = (n: number, extra: object = {}) =>
        Array.from({ length: n }, (_, i) => ({ name: `t${i}`, run: noop, ...extra }));
      const t = T0 + 20_000;
      // 20 normal tasks, then (0.5 s younger, so below all 20 by prio_key) one with a close deadline:
      // its urgency (slack 1 s on an expected 10 s: +91 points) puts it first, beyond the first page of 8.
      const older = await submit(store, { name: 'older', tasks: many(20) }, t);
      const late = await submit(
        store,
        {
          name: 'late',
          deadline: new Date(t + 1000 + 11_000).toISOString(),
          tasks: [{ name: 'urgent', run: noop, expectedS: 10 }],
        },
        t + 500,
      );
      const one = { gpus: [], cpu: 64, memoryMiB: 0, slots: 1 };
      const first = await claimTasks(store, {
        owner: 'w1',
        capacity: one,
        now: t + 1000,
        weights: W,
        rand: 0.5,
        leaseMs: 30_000,
        candidates: 64,
        max: 1,
      });
      assert.deepEqual(
        first.claims.map((c) => [c.jobId, c.task]),
        [[late, 'urgent']],
      );
      // Without the deadline: the oldest normal task (a tie among the 20, any of them).
      const second = await claimTasks(store, {
        owner: 'w1',
        capacity: one,
        now: t + 1001,
        weights: W,
        rand: 0.5,
        leaseMs: 30_000,
        candidates: 64,
        max: 1,
      });
      assert.equal(second.claims[0]?.jobId, older);
      // 20 high-class GPU tasks above one low CPU task, on a worker with no GPU: none of the first
      // page fits, so the full page is read and the CPU task (row 21) starts.
      await cancelJob(store, older, t + 1002);
      const gpu = await submit(
        store,
        { name: 'gpu', priority: 'high', tasks: many(20, { resources: { gpus: 1 } }) },
        t + 2000,
      );
      const cpu = await submit(
        store,
        { name: 'cpu', priority: 'low', tasks: [{ name: 'c', run: noop }] },
        t + 2000,
      );
      const third = await claimTasks(store, {
        owner: 'w1',
        capacity: one,
        now: t + 3000,
        weights: W,
        rand: 0.5,
        leaseMs: 30_000,
        candidates: 64,
        max: 1,
      });
      assert.deepEqual(
        third.claims.map((c) => [c.jobId, c.task]),
        [[cpu, 'c']],
      );
      await cancelJob(store, gpu, t + 3001);
    });

    it('a pull worker is never handed an inference task, even the best-ranked one; the Kapok is', async () => {
      for (const t of ['job_attempts', 'job_tasks', 'jobs']) await store.execute(`DELETE FROM ${t}`);
      const t = T0 + 40_000;
      const inf = await submit(
        store,
        {
          name: 'inf',
          priority: 'critical',
          tasks: [{ name: 'i', run: { executor: 'inference', model: 'm', request: {} } }],
        },
        t,
      );
      const plain = await submit(
        store,
        { name: 'plain', priority: 'low', tasks: [{ name: 'p', run: noop }] },
        t,
      );
      const as = (executors?: readonly string[]) =>
        claimTasks(store, {
          owner: executors ? 'pull:w' : 'kapok',
          capacity: { gpus: [], cpu: 64, memoryMiB: 0, slots: 4 },
          now: t + 1000,
          weights: W,
          rand: 0.5,
          leaseMs: 30_000,
          candidates: 64,
          max: 4,
          ...(executors ? { executors } : {}),
        });
      const pulled = await as(PULL_EXECUTORS);
      assert.deepEqual(
        pulled.claims.map((c) => [c.jobId, c.task]),
        [[plain, 'p']],
      );
      const local = await as();
      assert.deepEqual(
        local.claims.map((c) => [c.jobId, c.task]),
        [[inf, 'i']],
      );
      await cancelJob(store, inf, t + 1001);
      await cancelJob(store, plain, t + 1001);
    });

    it('records several results in one transaction; one that fails leaves the others recorded', async () => {
      const t = T0 + 50_000;
      const id = await submit(
        store,
        { name: 'batch', tasks: ['a', 'b', 'c'].map((name) => ({ name, run: noop })) },
        t,
      );
      const got = (await claim(store, t + 1)).claims.filter((c) => c.jobId === id);
      const by = (n: string) => got.find((c) => c.task === n) as Claim;
      const o = { weights: W, now: t + 2, rand: 0.5 };
      // b's result cannot be written (no time: a statement parameter is undefined): the batch
      // fails as a whole, then each result is written alone.
      const out = await finishAttempts(store, [
        { c: by('a'), res: ok, o },
        { c: by('b'), res: ok, o: { ...o, now: undefined as unknown as number } },
        { c: by('c'), res: ok, o },
      ]);
      assert.deepEqual(out[0], {});
      assert.ok(out[1] instanceof Error && isKapokError(out[1], 'KAPOK_STORE_QUERY'));
      assert.deepEqual(out[2], {});
      const states = async () =>
        Object.fromEntries(((await getJob(store, id))?.tasks ?? []).map((x) => [x.name, x.state]));
      assert.deepEqual(await states(), { a: 'succeeded', b: 'running', c: 'succeeded' });
      // In one transaction: b's result ends the job; a result already recorded is a no-op.
      const again = await finishAttempts(store, [
        { c: by('b'), res: ok, o },
        { c: by('a'), res: ok, o },
      ]);
      assert.deepEqual(again, [{ jobFinished: { jobId: id, state: 'succeeded' } }, {}]);
      assert.deepEqual(await states(), { a: 'succeeded', b: 'succeeded', c: 'succeeded' });
    });

    it('a batch of successes moves a fan-in join once: ready when its last need is in, at that time', async () => {
      const t = T0 + 60_000;
      const id = await submit(
        store,
        {
          name: 'join',
          tasks: [
            ...['a', 'b', 'c'].map((name) => ({ name, run: noop })),
            { name: 'j', needs: ['a', 'b', 'c'], run: noop },
            { name: 'x', run: noop },
            { name: 'y', needs: ['x'], run: noop },
          ],
        },
        t,
      );
      const got = (await claim(store, t + 1)).claims.filter((c) => c.jobId === id);
      const by = (n: string) => got.find((c) => c.task === n) as Claim;
      const at = (now: number) => ({ weights: W, now, rand: 0.5 });
      // Two of j's three needs, and x (y's only one), each at its own time.
      assert.deepEqual(
        await finishAttempts(store, [
          { c: by('a'), res: ok, o: at(t + 2) },
          { c: by('x'), res: ok, o: at(t + 3) },
          { c: by('b'), res: ok, o: at(t + 4) },
        ]),
        [{}, {}, {}],
      );
      const next = async (now: number) => (await claim(store, now)).claims.filter((c) => c.jobId === id);
      const ready = await next(t + 10);
      assert.deepEqual(names(ready), ['y']);
      assert.equal(ready[0]?.readyAt, t + 3);
      // c ends j's wait; a result already recorded (a) is a no-op; a failure flushes the successes
      // before it: y's failure fails the job after c has released j (j is skipped, not left queued).
      const y = ready[0] as Claim;
      const out = await finishAttempts(store, [
        { c: by('c'), res: ok, o: at(t + 11) },
        { c: by('a'), res: ok, o: at(t + 12) },
        { c: y, res: fail(), o: at(t + 13) },
      ]);
      assert.deepEqual(out.slice(0, 2), [{}, {}]);
      assert.deepEqual((out[2] as Effects).jobFinished, { jobId: id, state: 'failed' });
      const tasks = Object.fromEntries(
        ((await getJob(store, id))?.tasks ?? []).map((x) => [x.name, x.state]),
      );
      assert.deepEqual(tasks, {
        a: 'succeeded',
        b: 'succeeded',
        c: 'succeeded',
        j: 'skipped',
        x: 'succeeded',
        y: 'failed',
      });
    });

    it('a batch of successes that ends its job reports it on the last of them', async () => {
      const t = T0 + 70_000;
      const id = await submit(
        store,
        {
          name: 'fanin',
          tasks: [
            ...['a', 'b'].map((name) => ({ name, run: noop })),
            { name: 's', needs: ['a', 'b'], run: noop },
          ],
        },
        t,
      );
      const first = (await claim(store, t + 1)).claims.filter((c) => c.jobId === id);
      const at = (now: number) => ({ weights: W, now, rand: 0.5 });
      assert.deepEqual(
        await finishAttempts(
          store,
          first.map((c) => ({ c, res: ok, o: at(t + 2) })),
        ),
        [{}, {}],
      );
      const [s] = (await claim(store, t + 3)).claims.filter((c) => c.jobId === id);
      assert.equal(s?.task, 's');
      assert.equal(s?.readyAt, t + 2);
      const other = await submit(store, { name: 'other', tasks: [{ name: 'o', run: noop }] }, t + 3);
      const [o] = (await claim(store, t + 4)).claims.filter((c) => c.jobId === other);
      const out = await finishAttempts(store, [
        { c: s as Claim, res: ok, o: at(t + 5) },
        { c: o as Claim, res: ok, o: at(t + 6) },
      ]);
      assert.deepEqual(out, [
        { jobFinished: { jobId: id, state: 'succeeded' } },
        { jobFinished: { jobId: other, state: 'succeeded' } },
      ]);
    });
  });
}
