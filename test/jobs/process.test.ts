import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { processExecutor } from '../../src/jobs/executors/process.js';
import type { RunContext } from '../../src/jobs/executors/types.js';
import type { CheckpointInput } from '../../src/jobs/queries.js';
import { validateSpec } from '../../src/jobs/spec.js';
import { tmpDir } from '../helpers/tmp.js';

const LIMITS = { gpus: 8, gpuMemoryMiB: 81920, cpu: 64, memoryMiB: 0 };

function ctx(
  task: Record<string, unknown>,
  o: Partial<RunContext> = {},
): RunContext & { reported: CheckpointInput[] } {
  const spec = validateSpec({ name: 'p', tasks: [{ name: 't', ...task }] }, LIMITS).tasks[0];
  assert.ok(spec);
  const reported: CheckpointInput[] = [];
  return {
    jobId: 'job-1',
    task: 't',
    attempt: 2,
    gpus: [1, 3],
    spec,
    checkpointDir: join(tmpDir('kapok-proc-'), 'ck'),
    checkpoint: null,
    signal: new AbortController().signal,
    timeoutMs: spec.timeoutS === undefined ? null : spec.timeoutS * 1000,
    maxOutputBytes: 4096,
    onCheckpoint: async (c) => {
      reported.push(c);
    },
    reported,
    ...o,
  };
}
const sh = (script: string, extra: Record<string, unknown> = {}) => ({
  run: { executor: 'process', command: ['sh', '-c', script], ...extra },
});

describe('process executor', () => {
  it('gives the task its env (never KAPOK_* settings) and GPUs', async () => {
    process.env.KAPOK_SECRET_FOR_TEST = 'must-not-leak';
    try {
      const r = await processExecutor(
        ctx(
          sh(
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
            'echo "$JOB_ID $TASK $ATTEMPT $CUDA_VISIBLE_DEVICES $MINE ${KAPOK_SECRET_FOR_TEST:-none}"; echo "dir=$CHECKPOINT_DIR"',
            { env: { MINE: 'yes' } },
          ),
        ),
      );
      assert.equal(r.ok, true);
      assert.match(r.output ?? '', /^job-1 t 2 1,3 yes none\n/);
      assert.match(r.output ?? '', /dir=.*\/ck\n/);
    } finally {
      delete process.env.KAPOK_SECRET_FOR_TEST;
    }
  });

  it('reports a failing exit code, and keeps only the tail of large output', async () => {
    const r = await processExecutor(
      ctx(sh('head -c 100000 /dev/zero | tr "\\0" x; echo; echo last words >&2; exit 7')),
    );
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.failure.class === 'exit' && r.failure.exitCode === 7);
    assert.ok((r.output ?? '').length < 4200, `output ${r.output?.length}`);
    assert.match(r.output ?? '', /^\[\d+ earlier bytes dropped\]/);
    assert.match(r.output ?? '', /last words\n$/);
  });

  it('times out: the whole process group is stopped before the result (no duplicate beside the retry)', async () => {
    const dir = tmpDir('kapok-proc-');
    const marker = join(dir, 'grandchild-survived');
    const started = Date.now();
    const r = await processExecutor(ctx({ ...sh(`(sleep 2; touch ${marker}) & sleep 30`), timeoutS: 0.5 }));
    assert.ok(!r.ok && r.failure.class === 'timeout', JSON.stringify(r));
    assert.ok(Date.now() - started < 5000);
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal(existsSync(marker), false, 'a grandchild outlived the attempt');
  });

  it('stops at once when cancelled', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const started = Date.now();
    const r = await processExecutor(ctx(sh('sleep 30'), { signal: ac.signal }));
    assert.ok(!r.ok && r.reason === 'cancelled');
    assert.ok(Date.now() - started < 4000);
  });

  it('reports checkpoints from stdout lines and gets the last one back', async () => {
    const c = ctx(
      sh(
        `echo '::kapok-checkpoint:: {"data":"${Buffer.from('epoch=3').toString('base64')}"}'; echo '::kapok-checkpoint:: {"uri":"s3://b/k","sm3":"${'ab'.repeat(32)}"}'; echo '::kapok-checkpoint:: not json'; echo done`,
      ),
      {
        checkpoint: { seq: 1, attempt: 1, data: Buffer.from('epoch=2'), uri: null, sm3: 'x', createdAt: '' },
      },
    );
    const r = await processExecutor(c);
    assert.equal(r.ok, true);
    assert.equal(c.reported.length, 2);
    assert.deepEqual(c.reported[0], { data: Buffer.from('epoch=3') });
    assert.deepEqual(c.reported[1], { uri: 's3://b/k', sm3: 'ab'.repeat(32) });
    assert.match(r.output ?? '', /checkpoint refused: a checkpoint is/);
    assert.equal(readFileSync(join(c.checkpointDir, '.kapok-checkpoint'), 'utf8'), 'epoch=2');
    const r2 = await processExecutor(
      ctx(sh('cat "$CHECKPOINT_FILE"'), {
        checkpoint: {
          seq: 1,
          attempt: 1,
          data: Buffer.from('resume-me'),
          uri: null,
          sm3: 'x',
          createdAt: '',
        },
      }),
    );
    assert.equal(r2.output, 'resume-me');
  });

  it('a command that does not exist is a spawn failure', async () => {
    const r = await processExecutor(
      ctx({ run: { executor: 'process', command: ['/nonexistent/kapok-task'] } }),
    );
    assert.ok(!r.ok && r.failure.class === 'spawn', JSON.stringify(r));
    assert.match(!r.ok ? r.reason : '', /cannot start \/nonexistent\/kapok-task/);
  });

  it('applies memoryMiB as a data limit where prlimit is installed', async (t) => {
    if (!existsSync('/usr/bin/prlimit') && !existsSync('/bin/prlimit'))
      return t.skip('prlimit (util-linux) not installed');
    const r = await processExecutor(
      ctx({ ...sh('cat /proc/self/limits | grep "Max data size"'), resources: { memoryMiB: 64 } }),
    );
    assert.match(r.output ?? '', /Max data size\s+67108864\s+67108864/);
  });
});
