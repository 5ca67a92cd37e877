import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kapok, kapokUp } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/** `kapok jobs …` on the Store, beside a running `kapok up` that runs what it submits. */
describe('kapok jobs', () => {
  it('submits, watches to the end, lists, shows, cancels and retries; refuses bad specs', async () => {
    const dataDir = tmpDir('kapok-jobs-cli-');
    const env = {
      KAPOK_DATA_DIR: dataDir,
      KAPOK_JOBS__ENABLED: 'true',
      KAPOK_JOBS__POLL_MS: '50',
      KAPOK_JOBS__WORKER__GPUS: 'none',
    };
    const file = (name: string, text: string) => {
      const p = join(dataDir, name);
      writeFileSync(p, text);
      return p;
    };
    const good = file(
      'good.yaml',
      'name: cli\ntasks:\n  - { name: a, run: { executor: noop } }\n  - { name: b, needs: [a], run: { executor: process, command: [sh, -c, "echo b"] } }\n',
    );
    const failing = file(
      'fail.yaml',
      'name: bad\ntasks:\n  - { name: a, run: { executor: process, command: [sh, -c, "exit 4"] } }\n',
    );
    const cyclic = file(
      'cycle.yaml',
      'name: c\ntasks:\n  - { name: a, needs: [a2], run: { executor: noop } }\n  - { name: a2, needs: [a], run: { executor: noop } }\n',
    );

    const dry = await kapok(['jobs', 'submit', cyclic, '--dry-run'], env);
    assert.equal(dry.code, 1);
    assert.match(dry.stderr, /tasks\[0\] \(a\)\.needs: cycle a → a2 → a \[KAPOK_JOBS_INVALID_SPEC\]/);
    const missing = await kapok(['jobs', 'submit', join(dataDir, 'nope.yaml')], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot be read/);
    const ok = await kapok(['jobs', 'submit', good, '--dry-run'], env);
    assert.equal(ok.stdout, 'ok: cli, 2 tasks\n');

    const up = await kapokUp(env, [], 60_000);
    try {
      const sub = await kapok(['jobs', 'submit', good], env);
      assert.equal(sub.code, 0, sub.stderr);
      const id = sub.stdout.trim();
      assert.match(id, /^[0-9a-f-]{36}$/);
      const watch = await kapok(['jobs', 'watch', id, '--interval', '50'], env);
      // The start banner (printed once ready) names the jobs API and the next command.
      assert.match(
        up.stderr(),
        /\n {2}jobs {6}http:\/\/127\.0\.0\.1:\d+\/api\/jobs, live ws:\/\/.*\/ws\/jobs\n {12}try: kapok jobs submit FILE\n/,
      );
      assert.equal(watch.code, 0, watch.stderr);
      assert.match(watch.stdout, /cli \([0-9a-f-]+\)\s+succeeded\n\[#{30}\] 2\/2/);
      assert.match(watch.stdout, /L0: ✓ a\n\s+L1: ✓ b/);

      const bad = (await kapok(['jobs', 'submit', failing], env)).stdout.trim();
      const w2 = await kapok(['jobs', 'watch', bad, '--interval', '50'], env);
      assert.equal(w2.code, 1);
      assert.match(w2.stdout, /✗ a: exited with code 4 \(attempt 1 of 1\)/);

      const list = await kapok(['jobs', 'list', '--json', '--state', 'succeeded'], env);
      assert.deepEqual(
        list.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).id),
        [id],
      );
      const show = await kapok(['jobs', 'show', bad, '--json'], env);
      assert.equal(JSON.parse(show.stdout).tasks[0].attempts[0].exitCode, 4);
      const retry = await kapok(['jobs', 'retry', bad], env);
      assert.equal(retry.code, 0, retry.stderr);
      const cancel = await kapok(['jobs', 'cancel', bad], env);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(cancel.stdout, /(cancelled|failed)\n$/);
      const again = await kapok(['jobs', 'retry', id], env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /succeeded: nothing to retry \[KAPOK_JOBS_CONFLICT\]/);
      const state = await kapok(['jobs', 'list', '--state', 'done'], env);
      assert.equal(state.code, 1);
      assert.match(state.stderr, /KAPOK_JOBS_BAD_QUERY/);
    } finally {
      up.child.kill('SIGTERM');
      assert.equal(await up.exited, 0);
    }
  });
});
