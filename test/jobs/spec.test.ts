import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKapokError } from '../../src/core/errors.js';
import { parseSpec, validateSpec, type WorkerLimits } from '../../src/jobs/spec.js';

const LIMITS: WorkerLimits = { gpus: 8, gpuMemoryMiB: 81920, cpu: 64, memoryMiB: 0 };
const NOW = Date.parse('2026-12-01T00:00:00Z');
const noop = { executor: 'noop' };

function refused(spec: unknown, ...parts: (string | RegExp)[]): string {
  try {
    validateSpec(spec, LIMITS, NOW);
  } catch (err) {
    assert.ok(isKapokError(err, 'KAPOK_JOBS_INVALID_SPEC'), String(err));
    assert.equal(err.status, 400);
    for (const p of parts)
      if (typeof p === 'string') assert.ok(err.message.includes(p), `${err.message}\n  lacks: ${p}`);
      else assert.match(err.message, p);
    return err.message;
  }
  assert.fail('spec was accepted');
}

const job = (tasks: unknown[], extra: Record<string, unknown> = {}) => ({ name: 'j', tasks, ...extra });

describe('job spec', () => {
  it('accepts a DAG in YAML with defaults filled in', () => {
    const spec = parseSpec(
      `name: train
deadline: 2026-12-02T00:00:00Z
priority: high
tasks:
  - name: prep
    run: { executor: process, command: [sh, -c, "echo hi"] }
  - name: train
    needs: [prep]
    run: { executor: process, command: [python, train.py] }
    resources: { gpus: 2, gpuMemoryMiB: 40000 }
    timeoutS: 3600
    retry: { maxAttempts: 3, backoff: { baseS: 5, factor: 2, maxS: 60 }, retryOn: [1, timeout] }
    checkpoint: { everyS: 300 }
`,
      LIMITS,
      NOW,
    );
    assert.equal(spec.priority, 'high');
    assert.equal(spec.tasks[1]?.retry.backoff.jitter, 0.1);
    assert.deepEqual(spec.tasks[1]?.retry.retryOn, [1, 'timeout']);
    assert.equal(spec.tasks[0]?.retry.maxAttempts, 1);
    assert.equal(spec.tasks[0]?.onFailure, 'fail');
  });

  it('prints a cycle with the task path', () => {
    refused(
      job([
        { name: 'a', needs: ['c'], run: noop },
        { name: 'b', needs: ['a'], run: noop },
        { name: 'c', needs: ['b'], run: noop },
      ]),
      'needs: cycle a → c → b → a',
      'tasks[0] (a)',
    );
  });

  it('names unknown and duplicate tasks, and self needs', () => {
    refused(job([{ name: 'a', needs: ['nope'], run: noop }]), 'tasks[0] (a).needs[0]: unknown task "nope"');
    refused(
      job([
        { name: 'a', run: noop },
        { name: 'a', run: noop },
      ]),
      'tasks[1].name: a is also tasks[0]',
    );
    refused(
      job([{ name: 'a', needs: ['a'], run: noop }]),
      'tasks[0] (a).needs[0]: a task cannot need itself',
    );
  });

  it('refuses over 1,000 tasks and a chain deeper than 64', () => {
    refused(
      job(Array.from({ length: 1001 }, (_, i) => ({ name: `t${i}`, run: noop }))),
      '1001 tasks, over 1000',
    );
    const chain = Array.from({ length: 65 }, (_, i) => ({
      name: `t${i}`,
      needs: i ? [`t${i - 1}`] : [],
      run: noop,
    }));
    refused(job(chain), 'tasks[64] (t64).needs: dependency chain of 65 tasks ends here, over 64');
    assert.doesNotThrow(() => validateSpec(job(chain.slice(0, 64)), LIMITS, NOW));
    // 1,000 tasks, fan-out/fan-in, is fine.
    const wide = [
      { name: 'root', run: noop },
      ...Array.from({ length: 998 }, (_, i) => ({ name: `w${i}`, needs: ['root'], run: noop })),
    ];
    wide.push({ name: 'sink', needs: wide.slice(1).map((t) => t.name), run: noop } as (typeof wide)[number]);
    assert.equal(validateSpec(job(wide), LIMITS, NOW).tasks.length, 1000);
  });

  it('refuses a deadline in the past', () => {
    refused(
      job([{ name: 'a', run: noop }], { deadline: '2026-11-30T23:59:59Z' }),
      'deadline: 2026-11-30T23:59:59Z is in the past',
    );
    refused(job([{ name: 'a', run: noop }], { deadline: 'tomorrow' }), 'deadline:');
  });

  it('refuses backoff factor outside 1..10, maxS below baseS, over 100 attempts', () => {
    const t = (retry: unknown) => job([{ name: 'train', run: noop, retry }]);
    refused(t({ backoff: { factor: 0.5 } }), 'tasks[0] (train).retry.backoff.factor: 0.5 is outside 1..10');
    refused(t({ backoff: { factor: 11 } }), 'factor: 11 is outside 1..10');
    refused(
      t({ backoff: { baseS: 60, maxS: 10 } }),
      'tasks[0] (train).retry.backoff.maxS: 10 is below baseS 60',
    );
    refused(t({ maxAttempts: 101 }), 'tasks[0] (train).retry.maxAttempts: 101 is over 100');
    refused(t({ retryOn: ['sometimes'] }), 'tasks[0] (train).retry.retryOn[0]');
  });

  it('refuses fractional or negative GPUs and a request larger than the largest worker', () => {
    const r = (resources: unknown) => job([{ name: 'gpu', run: noop, resources }]);
    refused(r({ gpus: 0.5 }), 'tasks[0] (gpu).resources.gpus: 0.5', 'no fractional GPUs');
    refused(r({ gpus: -1 }), 'resources.gpus: -1');
    refused(r({ gpus: 9 }), 'larger than the largest worker (gpus 9 > 8)');
    refused(r({ gpus: 1, gpuMemoryMiB: 100_000 }), 'gpuMemoryMiB 100000 > 81920');
    refused(r({ cpu: 65 }), 'cpu 65 > 64');
    refused(r({ gpuMemoryMiB: 10 }), 'set gpus too');
  });

  it('refuses unknown fields at every level, naming them', () => {
    refused({ ...job([{ name: 'a', run: noop }]), owner: 'x' }, '(spec): unknown field owner');
    refused(job([{ name: 'a', run: noop, retries: 3 }]), 'tasks[0] (a): unknown field retries');
    refused(
      job([{ name: 'a', run: { executor: 'process', command: ['x'], shell: true } }]),
      'tasks[0] (a).run: unknown field shell',
    );
    refused(job([{ name: 'a', run: { executor: 'docker' } }]), 'tasks[0] (a).run');
  });

  it('refuses malformed, hostile and oversized text', () => {
    const bad = (text: string, part: string) =>
      assert.throws(
        () => parseSpec(text, LIMITS, NOW),
        (e: unknown) => isKapokError(e, 'KAPOK_JOBS_INVALID_SPEC') && e.message.includes(part),
      );
    bad('name: [unclosed', 'not valid YAML or JSON');
    bad('- a\n- b', 'expected a mapping');
    bad('"just a string"', 'expected a mapping');
    bad(`name: x\nname: y\ntasks: []`, 'not valid YAML');
    bad(
      `a: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from({ length: 150 }, (_, i) => `k${i}: *a`).join('\n')}`,
      'not valid YAML',
    );
    bad(
      `name: x\ntasks:\n${'  - { name: a, run: { executor: noop } }\n'.repeat(40_000)}`,
      'over 1048576 bytes',
    );
    bad('name: "../../etc"\ntasks: [{ name: a, run: { executor: noop } }]', 'name:');
    bad('name: x\ntasks: []', 'tasks');
  });
});
