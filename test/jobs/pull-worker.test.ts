import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { kapokSpawn, kapokUp, type Running } from '../helpers/cli.js';
import { offYaml } from '../helpers/config.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Pull workers with real processes: a `kapok up` that runs no tasks itself (worker.slots 0) and a
 * `kapok worker` leasing from it over HTTP. The worker is SIGKILLed mid-task: the task is retried
 * after its lease (2 s here) runs out, the restarted worker stops the orphaned first attempt, and
 * the task succeeds exactly once in the attempt ledger. Worker and admin tokens each open only
 * their own API.
 *
 * nvidia-smi is the one fake (this machine has no GPU): a script printing recorded real output
 * lines (test/fixtures/jobs), swapped between heartbeats to show the worker reports GPUs anew.
 */

const ADMIN = 'admin-token-0123456789';
const WORKER = 'worker-token-0123456789';
const fixture = (f: string) => new URL(`../fixtures/jobs/${f}`, import.meta.url).pathname;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = (f: string) => {
  try {
    return readFileSync(f, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('jobs: pull workers', () => {
  const dir = tmpDir('kapok-pull-');
  const procs: ChildProcess[] = [];
  let up: Running | undefined;
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (up) {
      up.child.kill('SIGTERM');
      await up.exited;
    }
  });

  it('SIGKILL a worker mid-task: retried after the lease, done exactly once; tokens open only their own API', async () => {
    const cfg = join(dir, 'kapok.yaml');
    writeFileSync(
      cfg,
      [
        `dataDir: ${join(dir, 'data')}`,
        'jobs:',
        '  enabled: true',
        `  adminToken: ${ADMIN}`,
        `  workerTokens: [{ name: gpu-box, token: ${WORKER} }]`,
        '  leaseS: 2',
        '  heartbeatS: 0.5',
        '  pollMs: 50',
        '  worker: { slots: 0, gpus: none }',
        ...offYaml('jobs'),
        '',
      ].join('\n'),
    );
    up = await kapokUp({}, ['--config', cfg], 60_000);
    const base = `http://127.0.0.1:${up.port}/api/jobs`;
    const call = (path: string, token: string | null, body?: unknown) =>
      fetch(`${base}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    // Each token opens its own API only; neither is echoed back.
    const lease = {
      worker: 'x',
      gpus: [],
      slots: 1,
      cpu: 1,
      memoryMiB: 0,
      free: { gpus: [], cpu: 1, memoryMiB: 0, slots: 1 },
    };
    for (const [path, token, body] of [
      ['/', WORKER, undefined],
      ['/', WORKER, { name: 'x', tasks: [{ name: 'a', run: { executor: 'noop' } }] }],
      ['/workers/lease', ADMIN, lease],
      ['/workers/lease', null, lease],
    ] as const) {
      const r = await call(path, token, body);
      const text = await r.text();
      assert.equal(r.status, 401, `${path} with ${token}: ${text}`);
      assert.equal(JSON.parse(text).error.code, 'KAPOK_HTTP_UNAUTHORIZED');
      assert.ok(!text.includes(WORKER) && !text.includes(ADMIN));
    }
    const ok = await call('/workers/lease', WORKER, lease);
    assert.equal(ok.status, 200, await ok.clone().text());
    const bad = await call('/workers/lease', WORKER, { ...lease, slots: -1 });
    assert.equal(bad.status, 400);
    assert.equal(
      ((await bad.json()) as { error: { code: string } }).error.code,
      'KAPOK_JOBS_WORKER_BAD_REQUEST',
    );

    // A result for an attempt this worker does not hold (never leased): refused, nothing recorded.
    const stray = await call('/workers/result', WORKER, {
      worker: 'x',
      jobId: '00000000-0000-4000-8000-000000000000',
      task: 'a',
      attempt: 1,
      ok: true,
    });
    assert.equal(stray.status, 409, await stray.clone().text());
    assert.equal(((await stray.json()) as { error: { code: string } }).error.code, 'KAPOK_JOBS_LEASE_LOST');

    // nvidia-smi: recorded 8×A100 lines first.
    const smiOut = join(dir, 'smi.txt');
    copyFileSync(fixture('nvidia-smi-8xa100.txt'), smiOut);
    const smi = join(dir, 'nvidia-smi');
    writeFileSync(smi, `#!/bin/sh\ncat ${smiOut}\n`);
    chmodSync(smi, 0o755);
    const workerDir = join(dir, 'worker');
    const startWorker = async () => {
      const w = kapokSpawn(
        [
          'worker',
          '--url',
          `http://127.0.0.1:${up?.port}`,
          '--gpus',
          'auto',
          '--nvidia-smi',
          smi,
          '--slots',
          '2',
          '--id',
          'w1',
          '--data-dir',
          workerDir,
          '--poll-ms',
          '50',
        ],
        { KAPOK_WORKER_TOKEN: WORKER },
      );
      procs.push(w);
      await new Promise<void>((resolve, reject) => {
        w.stdout?.on('data', (d) => String(d).includes('kapok worker ready') && resolve());
        w.once('exit', (c) => reject(new Error(`worker exited ${c}`)));
      });
      return w;
    };
    let worker = await startWorker();

    const log = join(dir, 'task.log');
    const spec = {
      name: 'pulled',
      tasks: [
        {
          name: 'train',
          run: {
            executor: 'process',
            command: [
              'sh',
              '-c',
              'echo "start $ATTEMPT $$ $CUDA_VISIBLE_DEVICES" >> "$LOG"; if [ "$ATTEMPT" = 1 ]; then sleep 60; fi; echo "end $ATTEMPT" >> "$LOG"',
            ],
            env: { LOG: log },
          },
          // 30 GiB on one GPU: only a pull worker has GPUs (the Kapok has none).
          resources: { gpus: 1, gpuMemoryMiB: 30_000 },
          retry: { maxAttempts: 3, backoff: { baseS: 0, maxS: 0, jitter: 0 } },
        },
      ],
    };
    // The Kapok learns the largest worker from its first lease request; until then the spec is too big.
    let id = '';
    await until('the spec to fit the worker', async () => {
      const r = await call('/', ADMIN, spec);
      if (r.status === 201) id = ((await r.json()) as { id: string }).id;
      return id !== '';
    });
    await until('attempt 1 running on the worker', () => lines(log).some((l) => l.startsWith('start 1 ')));
    const [, , pid, gpus] = (lines(log)[0] as string).split(' ');
    // Best fit on the recorded A100s: GPU 6 has 41,709 MiB free, the least that holds 30,000.
    assert.equal(gpus, '6');
    const running = (await (await call(`/${id}`, ADMIN)).json()) as {
      tasks: Array<{
        state: string;
        attempts: Array<{ owner: string; state: string; failure: string | null }>;
      }>;
    };
    assert.equal(running.tasks[0]?.state, 'running');
    assert.equal(running.tasks[0]?.attempts[0]?.owner, 'worker:gpu-box:w1');

    // GPUs are read again on each heartbeat: the Kapok's record follows nvidia-smi.
    const db = await createSqliteStore({ file: join(dir, 'data', 'kapok.db') });
    try {
      copyFileSync(fixture('nvidia-smi-mixed.txt'), smiOut);
      await until('the new GPU report', async () => {
        const [w] = await db.query<{ gpus: string }>('SELECT gpus FROM job_workers WHERE id = ?', [
          'worker:gpu-box:w1',
        ]);
        return JSON.parse(w?.gpus ?? '[]').length === 3;
      });

      worker.kill('SIGKILL');
      await once(worker, 'exit');
      assert.ok(alive(Number(pid)), 'the orphaned attempt runs on after its worker died');
      // Back to the A100s, and the same worker (same data dir) again: it stops the orphan first.
      copyFileSync(fixture('nvidia-smi-8xa100.txt'), smiOut);
      worker = await startWorker();
      await until('the orphan to be stopped', () => !alive(Number(pid)), 10_000);

      await until('the job to finish', async () => {
        const j = (await (await call(`/${id}`, ADMIN)).json()) as { state: string };
        return ['succeeded', 'failed', 'cancelled'].includes(j.state);
      });
      const done = (await (await call(`/${id}`, ADMIN)).json()) as typeof running & { state: string };
      assert.equal(done.state, 'succeeded', JSON.stringify(done));
      const attempts = done.tasks[0]?.attempts ?? [];
      assert.deepEqual(
        attempts.map((a) => a.state),
        ['failed', 'succeeded'],
      );
      assert.match(attempts[0]?.failure ?? '', /lease lost/);
      const ledger = await db.query<{ attempt: number; state: string }>(
        "SELECT attempt, state FROM job_attempts WHERE job_id = ? AND state = 'succeeded'",
        [id],
      );
      assert.equal(ledger.length, 1, 'succeeded exactly once in the ledger');
      const log2 = lines(log);
      assert.equal(log2.filter((l) => l.startsWith('start ')).length, 2);
      assert.deepEqual(
        log2.filter((l) => l.startsWith('end ')),
        ['end 2'],
        'attempt 1 never finished: its orphan was stopped',
      );
    } finally {
      await db.close();
    }
  });
});
