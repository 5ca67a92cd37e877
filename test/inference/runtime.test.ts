import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { mlpModel, writeModel } from '../../scripts/onnx-models.js';
import { makeRepository, mlpRow, type Server, startInference, until, writeConfig } from './setup.js';

/**
 * Queue, deadlines, crash recovery and dynamic batching. Slow models are simulated with the worker's
 * test hook that blocks its thread (what a long session.run does), so nothing here depends on timing
 * beyond "this request waits behind that one".
 */

let s: Server;
before(async () => {
  const repo = makeRepository({
    mlp: mlpModel(),
    small: mlpModel(),
    batched: mlpModel(),
    crashy: mlpModel(),
    multi: mlpModel(),
  });
  writeConfig(repo, 'small', 'maxQueue: 2\n');
  writeConfig(repo, 'batched', 'maxBatchSize: 64\nbatching:\n  maxQueueDelayUs: 20000\n');
  writeConfig(repo, 'crashy', 'instances: 2\n');
  writeModel(repo, 'multi', 2, mlpModel({ bias: 1 }));
  writeModel(repo, 'multi', 3, mlpModel({ bias: 2 }));
  writeConfig(repo, 'multi', 'versionPolicy:\n  specific: [1, 3]\n');
  s = await startInference({}, repo);
});
after(() => s.stop());

const body = (rows: number[][], extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 16], data: rows }],
  ...extra,
});

async function metric(name: string, model: string): Promise<number> {
  const text = await (await request(`${s.base}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`model="${model}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('inference runtime: deadlines and the bounded queue', () => {
  it('a request past its deadline gets 504 and, queued, is dropped without running', async () => {
    const runner = s.service.repo.resolve('mlp').runner;
    const execBefore = await metric('kapok_inference_exec_count_total', 'mlp');
    runner.stallWorker(0, 600);
    // First request occupies the (stalled) worker; the second waits in the queue.
    const running = s.post('/v2/models/mlp/infer', body([mlpRow(1)]));
    const queued = s.post('/v2/models/mlp/infer', body([mlpRow(2)], { parameters: { timeout: 100_000 } }));
    const late = await queued;
    assert.equal(late.status, 504);
    assert.match(late.body.error, /deadline exceeded/);
    assert.equal((await running).status, 200);
    assert.equal((await s.post('/v2/models/mlp/infer', body([mlpRow(3)]))).status, 200);
    // The dropped request never ran: two executions (the first and the last), not three.
    assert.equal((await metric('kapok_inference_exec_count_total', 'mlp')) - execBefore, 2);
    assert.ok((await metric('kapok_inference_request_failure_total', 'mlp')) >= 1);
  });

  it('a full queue answers 429 at once; queued requests still complete', async () => {
    const runner = s.service.repo.resolve('small').runner;
    runner.stallWorker(0, 500);
    const first = s.post('/v2/models/small/infer', body([mlpRow(1)])); // running (stalled)
    await until(() => runner.queueDepth === 0 && true);
    const q1 = s.post('/v2/models/small/infer', body([mlpRow(2)]));
    const q2 = s.post('/v2/models/small/infer', body([mlpRow(3)]));
    await until(() => runner.queueDepth === 2, 5000, 'two queued');
    const full = await s.post('/v2/models/small/infer', body([mlpRow(4)]));
    assert.equal(full.status, 429);
    assert.match(full.body.error, /queue full \(2 waiting\)/);
    assert.deepEqual(
      (await Promise.all([first, q1, q2])).map((r) => r.status),
      [200, 200, 200],
    );
  });
});

describe('inference runtime: worker crash', () => {
  it("a crashed worker's in-flight request fails with 500; others continue; the worker is replaced", async () => {
    const runner = s.service.repo.resolve('crashy').runner;
    assert.equal(runner.workers, 2);
    runner.stallWorker(0, 300);
    runner.crashWorker(0);
    // Both workers idle from the runner's view: the first request goes to worker 0 (about to die).
    const doomed = s.post('/v2/models/crashy/infer', body([mlpRow(1)]));
    const others = Array.from({ length: 6 }, (_, i) =>
      s.post('/v2/models/crashy/infer', body([mlpRow(i + 2)])),
    );
    const r = await doomed;
    assert.equal(r.status, 500);
    assert.match(r.body.error, /inference worker died/);
    for (const o of await Promise.all(others)) assert.equal(o.status, 200);
    await until(() => runner.workers === 2, 10_000, 'worker replaced');
    assert.equal((await s.post('/v2/models/crashy/infer', body([mlpRow(9)]))).status, 200);
    assert.ok(s.logs.lines.some((l) => l.code === 'KAPOK_INFERENCE_WORKER_CRASHED'));
    assert.equal(await metric('kapok_inference_worker_restarts_total', 'crashy'), 1);
  });
});

describe('inference runtime: dynamic batching', () => {
  it('batched outputs equal unbatched outputs, split back per request; fewer executions than requests', async () => {
    const runner = s.service.repo.resolve('batched').runner;
    assert.equal(runner.batched, true);
    const reqs = Array.from({ length: 24 }, (_, i) =>
      Array.from({ length: 1 + (i % 3) }, (_, j) => mlpRow(i * 10 + j)),
    );
    const execBefore = await metric('kapok_inference_exec_count_total', 'batched');
    runner.stallWorker(0, 200); // let requests pile up so they batch
    const batched = await Promise.all(
      reqs.map((rows, i) => s.post('/v2/models/batched/infer', body(rows, { id: `b${i}` }))),
    );
    const execs = (await metric('kapok_inference_exec_count_total', 'batched')) - execBefore;
    assert.ok(execs < reqs.length, `expected batching: ${execs} executions for ${reqs.length} requests`);
    for (let i = 0; i < reqs.length; i++) {
      const b = batched[i] as {
        status: number;
        body: { id: string; outputs: Array<{ shape: number[]; data: number[] }> };
      };
      assert.equal(b.status, 200);
      assert.equal(b.body.id, `b${i}`);
      const single = await s.post('/v2/models/mlp/infer', body(reqs[i] as number[][]));
      assert.deepEqual(b.body.outputs[0]?.shape, [(reqs[i] as number[][]).length, 4]);
      const want = single.body.outputs[0].data as number[];
      const got = b.body.outputs[0]?.data as number[];
      assert.equal(got.length, want.length);
      for (const [k, v] of got.entries())
        assert.ok(
          Math.abs(v - (want[k] as number)) <= 1e-5 * (1 + Math.abs(v)),
          `req ${i} elem ${k}: ${v} vs ${want[k]}`,
        );
    }
  });

  it('at low load a lone request waits at most maxQueueDelayUs and is answered', async () => {
    const r = await Promise.all([1, 2, 3].map((i) => s.post('/v2/models/batched/infer', body([mlpRow(i)]))));
    for (const [i, x] of r.entries()) {
      assert.equal(x.status, 200);
      const single = await s.post('/v2/models/mlp/infer', body([mlpRow(i + 1)]));
      assert.deepEqual(x.body.outputs[0].shape, [1, 4]);
      assert.equal(x.body.outputs[0].data.length, single.body.outputs[0].data.length);
    }
  });

  it('a batch larger than maxBatchSize is refused with 400', async () => {
    const rows = Array.from({ length: 65 }, (_, i) => mlpRow(i));
    const r = await s.post('/v2/models/batched/infer', body(rows));
    assert.equal(r.status, 400);
    assert.match(r.body.error, /batch 65 exceeds the model's maxBatchSize 64/);
  });
});

describe('inference runtime: version policy and names', () => {
  it('versionPolicy specific serves exactly the listed versions; no version means the highest', async () => {
    const meta = await s.get('/v2/models/multi');
    assert.deepEqual([...meta.body.versions].sort(), ['1', '3']);
    assert.equal(
      (await s.post('/v2/models/multi/versions/1/infer', body([mlpRow(1)]))).body.model_version,
      '1',
    );
    assert.equal(
      (await s.post('/v2/models/multi/versions/3/infer', body([mlpRow(1)]))).body.model_version,
      '3',
    );
    assert.equal((await s.post('/v2/models/multi/versions/2/infer', body([mlpRow(1)]))).status, 404);
    assert.equal((await s.post('/v2/models/multi/infer', body([mlpRow(1)]))).body.model_version, '3');
  });

  it('hostile model names never reach the file system', async () => {
    for (const name of ['..', '.hidden', '%2E%2E%2Fetc', 'a%2F..%2F..', 'x'.repeat(300)]) {
      const r = await s.post(`/v2/repository/models/${name}/load`, {});
      // 414: Fastify's router refuses path parameters over 256 characters before any handler.
      assert.ok([400, 404, 414].includes(r.status), `${name}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.ok(r.body.error, 'an error is answered');
    }
  });
});
