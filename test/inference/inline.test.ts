import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { convModel, encodeModel, mlpModel, ONNX_TYPE } from '../../scripts/onnx-models.js';
import { INLINE_MAX_RUN_MS, INLINE_SLOW_RUNS } from '../../src/inference/execution/runner.js';
import { makeRepository, mlpRow, type Server, startInference, until, writeConfig } from './setup.js';

/**
 * inlineMaxBytes: a tiny model's session runs on the event-loop thread, behind the same runner as a
 * worker's: same answers, same queue and deadline behaviour, crash replacement through the test hook.
 */

/** A model of a few hundred bytes that is slow per request: sum(x · xᵀ) over an [n, 8] input builds an
 * n × n matrix (n = 3,000: 36 MB written and read, ≥ 7 ms on any CPU) and sums it. The answer is
 * ‖Σ rows‖², so it can be checked. */
const slowModel = () =>
  encodeModel({
    name: 'slow',
    nodes: [
      { op: 'Transpose', inputs: ['x'], outputs: ['xt'] },
      { op: 'MatMul', inputs: ['x', 'xt'], outputs: ['m'] },
      { op: 'ReduceSum', inputs: ['m'], outputs: ['y'] },
    ],
    inputs: [{ name: 'x', type: ONNX_TYPE.FLOAT, shape: ['n', 8] }],
    outputs: [{ name: 'y', type: ONNX_TYPE.FLOAT, shape: [1, 1] }],
  });

let s: Server;
before(async () => {
  const repo = makeRepository({
    tiny: mlpModel(),
    pinned: mlpModel(),
    pair: mlpModel(),
    conv: convModel(),
    slow: slowModel(),
  });
  writeConfig(repo, 'pinned', 'inlineMaxBytes: 0\n');
  writeConfig(repo, 'pair', 'instances: 2\n');
  writeConfig(repo, 'conv', 'inlineMaxBytes: 16\n');
  s = await startInference({}, repo);
});
after(() => s.stop());

const body = (rows: number[][]) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 16], data: rows }],
});

describe('inference inline sessions (inlineMaxBytes)', () => {
  it('runs a model within the size inline, and in workers when set to 0, above the size or with instances > 1', () => {
    const runner = (m: string) => s.service.repo.resolve(m).runner;
    assert.equal(runner('tiny').inline, true);
    assert.equal(runner('pinned').inline, false);
    assert.equal(runner('pair').inline, false);
    assert.equal(runner('conv').inline, false);
    assert.equal(runner('tiny').workers, 1);
  });

  it('answers exactly what a worker answers', async () => {
    const rows = [mlpRow(1), mlpRow(2), mlpRow(3)];
    const [a, b] = await Promise.all([
      s.post('/v2/models/tiny/infer', body(rows)),
      s.post('/v2/models/pinned/infer', body(rows)),
    ]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.deepEqual(a.body.outputs, b.body.outputs);
    assert.deepEqual(a.body.outputs[0].shape, [3, 4]);
  });

  it('keeps the queue and deadlines: a stalled inline session queues requests, a late one gets 504', async () => {
    const runner = s.service.repo.resolve('tiny').runner;
    runner.stallWorker(0, 500);
    const running = s.post('/v2/models/tiny/infer', body([mlpRow(1)]));
    const late = s.post('/v2/models/tiny/infer', { ...body([mlpRow(2)]), parameters: { timeout: 100_000 } });
    const r = await late;
    assert.equal(r.status, 504);
    assert.match(r.body.error, /deadline exceeded/);
    assert.equal((await running).status, 200);
  });

  it('a crashed inline session fails its in-flight request with 500 and is replaced', async () => {
    const runner = s.service.repo.resolve('tiny').runner;
    runner.stallWorker(0, 200);
    runner.crashWorker(0);
    const doomed = await s.post('/v2/models/tiny/infer', body([mlpRow(1)]));
    assert.equal(doomed.status, 500);
    assert.match(doomed.body.error, /inference worker died: .*crash requested/);
    await until(() => runner.workers === 1, 10_000, 'inline session replaced');
    assert.equal((await s.post('/v2/models/tiny/infer', body([mlpRow(2)]))).status, 200);
    assert.ok(s.logs.lines.some((l) => l.code === 'KAPOK_INFERENCE_WORKER_CRASHED' && l.model === 'tiny'));
  });

  it(`moves a model to a worker after ${INLINE_SLOW_RUNS} inline runs in a row over ${INLINE_MAX_RUN_MS} ms, and keeps answering`, async () => {
    const runner = () => s.service.repo.resolve('slow').runner;
    assert.equal(runner().inline, true, 'a model of a few hundred bytes starts inline');
    const n = 3000;
    const data = Array.from({ length: n }, (_, i) =>
      Array.from({ length: 8 }, (_, j) => ((i * 7 + j * 3) % 11) / 11 - 0.5),
    );
    const colSums = Array.from({ length: 8 }, (_, j) => data.reduce((a, r) => a + (r[j] as number), 0));
    const want = colSums.reduce((a, c) => a + c * c, 0);
    const req = { inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 8], data }] };
    const first = await s.post('/v2/models/slow/infer', req);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const got = first.body.outputs[0].data.flat(2)[0] as number; // 9 M float32 sums: 1 % tolerance
    assert.ok(Math.abs(got - want) <= 1e-2 * Math.max(1, Math.abs(want)), `sum ${got} vs ${want}`);
    for (let i = 1; i < INLINE_SLOW_RUNS; i++) {
      assert.equal(runner().inline, true, `still inline after ${i} slow run(s)`);
      assert.equal((await s.post('/v2/models/slow/infer', req)).status, 200);
    }
    assert.equal(runner().inline, false, 'the slow runs moved it off the event loop');
    const line = s.logs.lines.find((l) => l.code === 'KAPOK_INFERENCE_INLINE_SLOW' && l.model === 'slow');
    assert.ok(line, 'a warning names the model');
    assert.ok((line.computeMs as number) > INLINE_MAX_RUN_MS);
    const second = await s.post('/v2/models/slow/infer', req);
    assert.equal(second.status, 200);
    assert.deepEqual(second.body.outputs, first.body.outputs);
    await until(() => runner().workers === 1, 10_000, 'one worker serves it');
    assert.equal(runner().inline, false);
  });
});
