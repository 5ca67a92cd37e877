import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { convModel, mlpModel } from '../../scripts/onnx-models.js';
import { makeRepository, mlpRow, type Server, startInference, until, writeConfig } from './setup.js';

/**
 * inlineMaxBytes: a tiny model's session runs on the event-loop thread, behind the same runner as a
 * worker's: same answers, same queue and deadline behaviour, crash replacement through the test hook.
 */

let s: Server;
before(async () => {
  const repo = makeRepository({ tiny: mlpModel(), pinned: mlpModel(), pair: mlpModel(), conv: convModel() });
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
});
