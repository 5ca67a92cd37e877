import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { request } from 'undici';
import { encodeModel, mlpModel, ONNX_TYPE } from '../../scripts/onnx-models.js';
import { makeRepository, mlpRow, type Server, startInference, until, writeConfig } from './setup.js';

/**
 * Each failure of an inference request, over REST (status + `x-kapok-error` header) and over gRPC
 * with the official @grpc/grpc-js client (status code + `x-kapok-error` trailer), as
 * src/inference/protocol/grpc-server.ts maps them. Slow models are the worker's stall hook (it
 * blocks the worker thread, as a long session.run does), long enough that the requests under test
 * are queued behind it; no assertion depends on how long anything takes.
 */

const PROTO = new URL('../../src/inference/protocol/grpc_predict_v2.proto', import.meta.url).pathname;

/** x[n] FLOAT reshaped to the shape given in s[k] INT64: loads fine, fails at run for a shape that does not fit. */
function reshapeModel(): Uint8Array {
  return encodeModel({
    name: 'reshape',
    nodes: [{ op: 'Reshape', inputs: ['x', 's'], outputs: ['y'] }],
    inputs: [
      { name: 'x', type: ONNX_TYPE.FLOAT, shape: ['n'] },
      { name: 's', type: ONNX_TYPE.INT64, shape: ['k'] },
    ],
    outputs: [{ name: 'y', type: ONNX_TYPE.FLOAT, shape: ['a', 'b'] }],
  });
}

/** text[n] STRING → Identity → echo[n]: BYTES elements live on the worker's V8 heap as JS strings. */
function echoModel(): Uint8Array {
  return encodeModel({
    name: 'echo',
    nodes: [{ op: 'Identity', inputs: ['text'], outputs: ['echo'] }],
    inputs: [{ name: 'text', type: ONNX_TYPE.STRING, shape: ['n'] }],
    outputs: [{ name: 'echo', type: ONNX_TYPE.STRING, shape: ['n'] }],
  });
}

// biome-ignore lint/suspicious/noExplicitAny: a dynamic client from proto-loader has no static types
type Client = any;
let s: Server;
let client: Client;

before(async () => {
  const repo = makeRepository({
    mlp: mlpModel(),
    gone: mlpModel(),
    slow: mlpModel(),
    tight: mlpModel(),
    reshape: reshapeModel(),
    heap: echoModel(),
  });
  writeConfig(repo, 'tight', 'maxQueue: 1\n');
  // A worker's heap limit: the echo model is tiny and would otherwise run inline (no worker heap).
  writeConfig(repo, 'heap', 'workerMemoryMb: 16\ninlineMaxBytes: 0\n');
  s = await startInference({}, repo);
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
  // biome-ignore lint/suspicious/noExplicitAny: generated package object
  const pkg = grpc.loadPackageDefinition(def) as any;
  client = new pkg.inference.GRPCInferenceService(
    `127.0.0.1:${s.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
});
after(async () => {
  client.close();
  await s.stop();
});

/** REST infer with the response's catalogue code header. */
async function rest(model: string, body: unknown): Promise<{ status: number; code: unknown; error: string }> {
  const res = await request(`${s.base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const parsed = (await res.body.json()) as { error?: string };
  return { status: res.statusCode, code: res.headers['x-kapok-error'], error: String(parsed.error) };
}

/** gRPC ModelInfer; a long client deadline, so any DEADLINE_EXCEEDED seen comes from the server. */
function infer(req: unknown): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.ModelInfer(
      req,
      { deadline: Date.now() + 60_000 },
      (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
    ),
  );
}

async function grpcFails(p: Promise<unknown>, status: grpc.status, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, status, `${grpc.status[err.code]}: ${err.details}`);
    assert.equal(err.metadata.get('x-kapok-error')[0], code);
    assert.match(err.details, re);
    return true;
  });
}

const restBody = (rows: number[][], extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 16], data: rows }],
  ...extra,
});
const grpcBody = (model: string, rows: number[][], extra: Record<string, unknown> = {}) => ({
  model_name: model,
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [rows.length, 16], contents: { fp32_contents: rows.flat() } },
  ],
  ...extra,
});

describe('inference error codes over REST and gRPC', () => {
  it('a bad input is 400 / INVALID_ARGUMENT with KAPOK_INFERENCE_BAD_REQUEST', async () => {
    const r = await rest('mlp', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: [1, 2] }] });
    assert.equal(r.status, 400);
    assert.equal(r.code, 'KAPOK_INFERENCE_BAD_REQUEST');
    assert.match(r.error, /input 'x': data has 2 elements/);
    await grpcFails(
      infer({ model_name: 'mlp', inputs: [{ name: 'nope', datatype: 'FP32', shape: [1], contents: {} }] }),
      grpc.status.INVALID_ARGUMENT,
      'KAPOK_INFERENCE_BAD_REQUEST',
      /input 'nope' is not an input of the model/,
    );
  });

  it('an unloaded model is 503 / UNAVAILABLE with KAPOK_INFERENCE_MODEL_NOT_READY, until loaded again', async () => {
    assert.equal((await rest('gone', restBody([mlpRow(1)]))).status, 200);
    await s.service.repo.unload('gone');
    const r = await rest('gone', restBody([mlpRow(1)]));
    assert.equal(r.status, 503);
    assert.equal(r.code, 'KAPOK_INFERENCE_MODEL_NOT_READY');
    assert.match(r.error, /model 'gone' has no ready version \(unloaded; load it again\)/);
    await grpcFails(
      infer(grpcBody('gone', [mlpRow(1)])),
      grpc.status.UNAVAILABLE,
      'KAPOK_INFERENCE_MODEL_NOT_READY',
      /unloaded; load it again/,
    );
    await s.service.repo.load('gone');
    assert.equal((await rest('gone', restBody([mlpRow(1)]))).status, 200);
  });

  it('a full queue is 429 / RESOURCE_EXHAUSTED with KAPOK_INFERENCE_QUEUE_FULL; admitted requests complete', async () => {
    const runner = s.service.repo.resolve('tight').runner;
    runner.stallWorker(0, 3000);
    // One request runs (on the stalled worker), one waits: the queue (maxQueue 1) is full.
    const admitted = [rest('tight', restBody([mlpRow(1)])), rest('tight', restBody([mlpRow(2)]))];
    await until(() => runner.queueDepth === 1, 5000, 'one request queued');
    const r = await rest('tight', restBody([mlpRow(3)]));
    assert.equal(r.status, 429);
    assert.equal(r.code, 'KAPOK_INFERENCE_QUEUE_FULL');
    assert.match(r.error, /queue full \(1 waiting\)/);
    await grpcFails(
      infer(grpcBody('tight', [mlpRow(4)])),
      grpc.status.RESOURCE_EXHAUSTED,
      'KAPOK_INFERENCE_QUEUE_FULL',
      /queue full \(1 waiting\)/,
    );
    for (const a of await Promise.all(admitted)) assert.equal(a.status, 200);
  });

  it('a request past its deadline is 504 / DEADLINE_EXCEEDED with KAPOK_INFERENCE_TIMEOUT', async () => {
    const runner = s.service.repo.resolve('slow').runner;
    runner.stallWorker(0, 1500);
    // parameters.timeout is in microseconds (Triton's name): 1000 µs, far shorter than the stall.
    const r = await rest('slow', restBody([mlpRow(1)], { parameters: { timeout: 1000 } }));
    assert.equal(r.status, 504);
    assert.equal(r.code, 'KAPOK_INFERENCE_TIMEOUT');
    assert.match(r.error, /deadline exceeded after 1 ms/);
    await grpcFails(
      infer(
        grpcBody('slow', [mlpRow(2)], {
          parameters: { timeout: { int64_param: '1000', parameter_choice: 'int64_param' } },
        }),
      ),
      grpc.status.DEADLINE_EXCEEDED,
      'KAPOK_INFERENCE_TIMEOUT',
      /deadline exceeded after 1 ms/,
    );
    assert.equal((await rest('slow', restBody([mlpRow(3)]))).status, 200, 'the model serves once free');
  });

  it('a run that ONNX Runtime refuses is 500 / INTERNAL with KAPOK_INFERENCE_RUN_FAILED; the worker serves on', async () => {
    const x = [1, 2, 3, 4];
    const good = await rest('reshape', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [4], data: x },
        { name: 's', datatype: 'INT64', shape: [2], data: [2, 2] },
      ],
    });
    assert.equal(good.status, 200, good.error);
    // Four elements cannot take the shape [3, 3]: only the run finds out (the shape is input data).
    const r = await rest('reshape', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [4], data: x },
        { name: 's', datatype: 'INT64', shape: [2], data: [3, 3] },
      ],
    });
    assert.equal(r.status, 500);
    assert.equal(r.code, 'KAPOK_INFERENCE_RUN_FAILED');
    assert.match(r.error, /ONNX Runtime failed: .*reshape/i);
    await grpcFails(
      infer({
        model_name: 'reshape',
        inputs: [
          { name: 'x', datatype: 'FP32', shape: ['4'], contents: { fp32_contents: x } },
          { name: 's', datatype: 'INT64', shape: ['2'], contents: { int64_contents: ['5', '1'] } },
        ],
      }),
      grpc.status.INTERNAL,
      'KAPOK_INFERENCE_RUN_FAILED',
      /ONNX Runtime failed/,
    );
    const runner = s.service.repo.resolve('reshape').runner;
    assert.equal(runner.workers, 1, 'a failed run does not cost the worker');
    const again = await rest('reshape', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [4], data: x },
        { name: 's', datatype: 'INT64', shape: [2], data: [4, 1] },
      ],
    });
    assert.equal(again.status, 200);
  });
});

describe('inference workerMemoryMb', () => {
  it('a request past the worker heap limit fails with a clear error; the worker is replaced and serves', async () => {
    const runner = s.service.repo.resolve('heap').runner;
    // 100 000 BYTES elements of 400 characters: ~40 MB of strings on the worker's heap, limit 16 MiB.
    const big = Array.from({ length: 100_000 }, (_, i) => `${'k'.repeat(396)}${String(i).padStart(4, '0')}`);
    const raw = Buffer.concat(
      big.flatMap((v) => [Buffer.from(Uint32Array.of(v.length).buffer), Buffer.from(v)]),
    );
    await grpcFails(
      infer({
        model_name: 'heap',
        inputs: [{ name: 'text', datatype: 'BYTES', shape: [String(big.length)] }],
        raw_input_contents: [raw],
      }),
      grpc.status.INTERNAL,
      'KAPOK_INFERENCE_WORKER_CRASHED',
      /inference worker died: .*memory limit.*workerMemoryMb 16/,
    );
    await until(() => runner.workers === 1, 20_000, 'worker replaced');
    const small = await rest('heap', {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['木棉', 'ok'] }],
    });
    assert.equal(small.status, 200, small.error);
    assert.ok(
      s.logs.lines.some((l) => l.code === 'KAPOK_INFERENCE_WORKER_CRASHED' && l.model === 'heap'),
      'the crash is logged with its code and model',
    );
  });
});
