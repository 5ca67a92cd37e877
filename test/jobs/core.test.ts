import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  backoffDelayS,
  type Candidate,
  type Capacity,
  canTransition,
  DEFAULT_WEIGHTS,
  decideRetry,
  downstream,
  fit,
  jobStateOf,
  maxWaitS,
  pickNext,
  readyTasks,
  score,
} from '../../src/jobs/core.js';
import { parseNvidiaSmi } from '../../src/jobs/gpus.js';

const B = { baseS: 10, factor: 2, maxS: 60, jitter: 0 };

describe('retries: backoff on a fake clock', () => {
  it('first retry waits baseS, then doubles, capped at maxS', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelayS(n, B, 0.5)),
      [10, 20, 40, 60, 60, 60],
    );
  });

  it('jitter stays within ± the fraction and never passes maxS', () => {
    const j = { ...B, jitter: 0.2 };
    assert.equal(backoffDelayS(1, j, 0), 8);
    assert.equal(backoffDelayS(1, j, 0.999999).toFixed(3), '12.000');
    assert.equal(backoffDelayS(4, j, 0.999999), 60, 'capped after jitter');
    assert.equal(backoffDelayS(4, j, 0), 48);
  });

  it('schedules each retry at now + delay, and no wait after the last attempt', () => {
    const p = { maxAttempts: 4, backoff: B };
    let now = Date.parse('2026-12-01T00:00:00Z');
    const waits: number[] = [];
    for (let attempt = 1; ; attempt++) {
      const d = decideRetry(p, attempt, { class: 'exit', exitCode: 1 }, now, 0.5, null, null);
      if (!d.retry) {
        assert.equal(d.reason, 'attempts');
        assert.equal(attempt, 4);
        break;
      }
      waits.push((d.at - now) / 1000);
      now = d.at + 1000; // the attempt ran 1 s on the fake clock
    }
    assert.deepEqual(waits, [10, 20, 40]);
  });

  it('retries only what retryOn names (exit codes, error classes)', () => {
    const p = { maxAttempts: 3, backoff: B, retryOn: [137, 'timeout'] };
    const t = 0;
    assert.equal(decideRetry(p, 1, { class: 'exit', exitCode: 137 }, t, 0.5, null, null).retry, true);
    assert.equal(decideRetry(p, 1, { class: 'timeout' }, t, 0.5, null, null).retry, true);
    const no = decideRetry(p, 1, { class: 'exit', exitCode: 1 }, t, 0.5, null, null);
    assert.deepEqual(no, { retry: false, reason: 'not_retryable' });
    assert.equal(decideRetry(p, 1, { class: 'lost' }, t, 0.5, null, null).retry, false);
  });

  it('no attempt that cannot finish before the deadline', () => {
    const p = { maxAttempts: 5, backoff: B };
    // Retry at +10 s, expected 30 s: done at +40 s. Deadline +39 s: refused; +40 s: allowed.
    assert.deepEqual(decideRetry(p, 1, { class: 'exit', exitCode: 1 }, 0, 0.5, 39_000, 30), {
      retry: false,
      reason: 'deadline',
    });
    assert.equal(decideRetry(p, 1, { class: 'exit', exitCode: 1 }, 0, 0.5, 40_000, 30).retry, true);
  });
});

describe('DAG and states', () => {
  const t = (
    name: string,
    needs: string[],
    state: 'queued' | 'succeeded' | 'failed' | 'running',
    onFailure: 'fail' | 'continue' = 'fail',
  ) => ({ name, needs, state, onFailure });
  it('ready tasks are queued ones whose needs succeeded (or failed with continue)', () => {
    const dag = [
      t('a', [], 'succeeded'),
      t('b', [], 'failed', 'continue'),
      t('c', ['a', 'b'], 'queued'),
      t('d', ['c'], 'queued'),
      t('e', [], 'running'),
      t('f', ['x'], 'queued'),
    ];
    assert.deepEqual(readyTasks(dag), ['c']);
    assert.deepEqual(readyTasks([t('a', [], 'failed'), t('b', ['a'], 'queued')]), []);
    assert.deepEqual(downstream(dag, 'a').sort(), ['c', 'd']);
  });

  it('the job state follows its tasks', () => {
    assert.equal(jobStateOf([{ state: 'queued', onFailure: 'fail' }]), 'queued');
    assert.equal(
      jobStateOf([
        { state: 'succeeded', onFailure: 'fail' },
        { state: 'queued', onFailure: 'fail' },
      ]),
      'running',
    );
    assert.equal(
      jobStateOf([
        { state: 'succeeded', onFailure: 'fail' },
        { state: 'failed', onFailure: 'continue' },
      ]),
      'succeeded',
    );
    assert.equal(
      jobStateOf([
        { state: 'failed', onFailure: 'fail' },
        { state: 'skipped', onFailure: 'fail' },
      ]),
      'failed',
    );
    assert.equal(
      jobStateOf([
        { state: 'cancelled', onFailure: 'fail' },
        { state: 'skipped', onFailure: 'fail' },
      ]),
      'cancelled',
    );
  });

  it('cancel is allowed from every unfinished state; succeeded is final', () => {
    for (const s of ['queued', 'running', 'retrying'] as const) assert.ok(canTransition(s, 'cancelled'));
    assert.equal(canTransition('succeeded', 'queued'), false);
    assert.equal(canTransition('failed', 'queued'), true);
  });
});

const cand = (key: string, o: Partial<Candidate> = {}): Candidate => ({
  key,
  priority: 'normal',
  readyAt: 0,
  deadline: null,
  expectedS: null,
  gpus: 0,
  gpuMemoryMiB: 0,
  cpu: 1,
  memoryMiB: 0,
  ...o,
});
const CAP: Capacity = { gpus: [], cpu: 64, memoryMiB: 0, slots: 1 };

describe('priority: score, ageing, EDF', () => {
  it('class first, then urgency near the deadline', () => {
    const now = 100_000;
    const order = pickNext(
      [
        cand('low', { priority: 'low' }),
        cand('crit', { priority: 'critical' }),
        cand('high', { priority: 'high' }),
      ],
      { ...CAP, slots: 3 },
      now,
    );
    assert.deepEqual(
      order.map((p) => p.candidate.key),
      ['crit', 'high', 'low'],
    );
    // Same class: the one with less slack per expected second goes first.
    const tight = cand('tight', { deadline: now + 20_000, expectedS: 10 });
    const loose = cand('loose', { deadline: now + 3_600_000, expectedS: 10 });
    assert.ok(score(tight, now) > score(loose, now));
    assert.equal(pickNext([loose, tight], CAP, now)[0]?.candidate.key, 'tight');
  });

  it('EDF breaks ties, then the longest waiting, then the key', () => {
    const w = { ...DEFAULT_WEIGHTS, urgency: 0 };
    const a = cand('a', { deadline: 9_000_000 });
    const b = cand('b', { deadline: 5_000_000 });
    const c = cand('c');
    assert.deepEqual(
      pickNext([c, a, b], { ...CAP, slots: 3 }, 0, w).map((p) => p.candidate.key),
      ['b', 'a', 'c'],
    );
    assert.deepEqual(
      pickNext([cand('y'), cand('x')], { ...CAP, slots: 2 }, 0, w).map((p) => p.candidate.key),
      ['x', 'y'],
    );
  });

  it('scripted workload: a low task under a steady stream of critical ones starts within maxWaitS', () => {
    // One slot, tasks of 10 s. A critical task arrives every 10 s, forever; one low task waits.
    const limit = maxWaitS('low');
    assert.equal(limit, 400);
    let now = 0;
    let queue: Candidate[] = [cand('low-1', { priority: 'low', readyAt: 0 })];
    let started: number | null = null;
    for (let i = 0; i < 200 && started === null; i++) {
      queue.push(cand(`crit-${i}`, { priority: 'critical', readyAt: now }));
      const [p] = pickNext(queue, CAP, now);
      assert.ok(p);
      if (p.candidate.key === 'low-1') started = now;
      queue = queue.filter((q) => q !== p.candidate);
      now += 10_000;
    }
    assert.ok(started !== null, 'the low task never started');
    assert.ok(started / 1000 <= limit + 10, `started after ${started / 1000} s`);
    assert.ok(started / 1000 >= 300, `ageing, not luck: started after ${started / 1000} s`);
  });

  it('scripted workload: equal priority runs in arrival order (no starvation)', () => {
    let now = 0;
    let queue: Candidate[] = [];
    const order: string[] = [];
    for (let i = 0; i < 50; i++) {
      queue.push(
        cand(`t${String(i).padStart(2, '0')}`, { readyAt: now }),
        cand(`u${String(i).padStart(2, '0')}`, { readyAt: now }),
      );
      const [p] = pickNext(queue, CAP, now);
      if (p) {
        order.push(p.candidate.key);
        queue = queue.filter((q) => q !== p.candidate);
      }
      now += 1000;
    }
    // Two arrive per step, one runs: the oldest always goes first, so the backlog is worked FIFO.
    assert.deepEqual(order.slice(0, 4), ['t00', 'u00', 't01', 'u01']);
    assert.equal(order.at(-1), 'u24');
  });
});

describe('GPU fit from recorded nvidia-smi outputs', () => {
  const fixture = (f: string) => readFileSync(new URL(`../fixtures/jobs/${f}`, import.meta.url), 'utf8');
  const capOf = (f: string, slots = 8): Capacity => ({
    gpus: parseNvidiaSmi(fixture(f)).map((g) => ({ index: g.index, freeMiB: g.totalMiB - g.usedMiB })),
    cpu: 64,
    memoryMiB: 0,
    slots,
  });

  it('parses 8×A100 output and fits by free memory, best fit first', () => {
    const gpus = parseNvidiaSmi(fixture('nvidia-smi-8xa100.txt'));
    assert.equal(gpus.length, 8);
    assert.deepEqual(gpus[2], { index: 2, totalMiB: 81920, usedMiB: 61482 });
    const cap = capOf('nvidia-smi-8xa100.txt');
    // 30 GiB on one GPU: GPU 6 has 41709 MiB free, the smallest that suffices.
    assert.deepEqual(fit({ gpus: 1, gpuMemoryMiB: 30_000, cpu: 1, memoryMiB: 0 }, cap), [6]);
    // 70 GiB on 5 GPUs: only 0,1,3,5,7 have that free.
    assert.deepEqual(fit({ gpus: 5, gpuMemoryMiB: 70_000, cpu: 1, memoryMiB: 0 }, cap), [0, 1, 3, 5, 7]);
    assert.equal(fit({ gpus: 6, gpuMemoryMiB: 70_000, cpu: 1, memoryMiB: 0 }, cap), null);
  });

  it('a task that does not fit lets a smaller one through (no head-of-line block)', () => {
    const cap = capOf('nvidia-smi-mixed.txt');
    const big = cand('big', { priority: 'critical', gpus: 1, gpuMemoryMiB: 30_000 });
    const small = cand('small', { priority: 'low', gpus: 1, gpuMemoryMiB: 20_000 });
    const picks = pickNext([big, small], cap, 0);
    assert.deepEqual(
      picks.map((p) => [p.candidate.key, p.gpus]),
      [['small', [0]]],
    );
  });

  it('[N/A] memory counts as none free; malformed output is refused', () => {
    const gpus = parseNvidiaSmi(fixture('nvidia-smi-mixed.txt'));
    assert.deepEqual(gpus[2], { index: 2, totalMiB: 0, usedMiB: 0 });
    assert.throws(() => parseNvidiaSmi('GPU 0: NVIDIA A100'), /not "index, memory.total, memory.used"/);
    assert.deepEqual(parseNvidiaSmi('\n'), []);
  });
});
