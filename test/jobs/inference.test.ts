import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mlpModel, writeModel } from '../../scripts/onnx-models.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { liveInstances } from '../../src/inference/capability.js';
import { inferencePort } from '../../src/inference/port.js';
import { inferenceExecutor } from '../../src/jobs/executors/inference.js';
import type { Checkpoint, CheckpointInput } from '../../src/jobs/queries.js';
import { validateSpec } from '../../src/jobs/spec.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';
import { mlpRow } from '../inference/setup.js';

/**
 * The `inference` executor: batch inference on a real ONNX model (the MLP of
 * scripts/onnx-models.ts) of the inference capability, reached through the inference port. Its
 * answers are checked against the same requests sent to /v2 over HTTP; a bad request fails the
 * task with the inference capability's message; without the inference capability the executor
 * is refused at submit.
 */

// biome-ignore lint/suspicious/noExplicitAny: test reads of JSON answers
type Json = Record<string, any>;

async function start(dir: string, inference: boolean): Promise<RunningApp> {
  const repo = join(dir, 'models');
  writeModel(repo, 'mlp', 1, mlpModel());
  const yaml = [
    `dataDir: ${join(dir, 'data')}`,
    'http: { host: 127.0.0.1, port: 0 }',
    'grpc: { port: 0 }',
    'log: { level: warn }',
    'jobs:',
    '  enabled: true',
    '  pollMs: 50',
    '  worker: { gpus: none, slots: 2 }',
    ...(inference ? [`inference: { enabled: true, repository: ${repo}, pollIntervalMs: 0 }`] : []),
    ...offYaml('jobs', ...(inference ? ['inference'] : [])),
  ].join('\n');
  return startApp(loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: dir }), {
    logDestination: captureLogs(),
  });
}

const request = (seed: number) => ({
  id: `r${seed}`,
  inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: [...mlpRow(seed), ...mlpRow(seed + 1)] }],
});

describe('jobs: the inference executor', () => {
  const dir = tmpDir('kapok-jobs-inf-');
  let app: RunningApp;
  let base: string;
  before(async () => {
    app = await start(dir, true);
    base = `http://127.0.0.1:${app.port}`;
  });
  after(() => app?.stop('test'));

  const post = async (path: string, body: unknown): Promise<{ status: number; body: Json }> => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as Json };
  };
  const finished = async (id: string): Promise<Json> => {
    for (let i = 0; i < 600; i++) {
      const j = (await (await fetch(`${base}/api/jobs/${id}?outputs=1`)).json()) as Json;
      if (['succeeded', 'failed', 'cancelled'].includes(j.state)) return j;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`job ${id} did not finish`);
  };

  it('runs a batch file and an inline request; the answers are those of /v2', async () => {
    const input = join(dir, 'batch.jsonl');
    const output = join(dir, 'answers.jsonl');
    writeFileSync(input, `${[1, 2, 3].map((s) => JSON.stringify(request(s))).join('\n')}\n`);
    const sub = await post('/api/jobs', {
      name: 'batch',
      tasks: [
        { name: 'file', run: { executor: 'inference', model: 'mlp', inputFile: input, outputFile: output } },
        { name: 'inline', run: { executor: 'inference', model: 'mlp', version: '1', request: request(9) } },
      ],
    });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const job = await finished(sub.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.tasks));
    const direct = async (seed: number) => (await post('/v2/models/mlp/infer', request(seed))).body;
    const answers = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Json);
    assert.equal(answers.length, 3);
    for (const [i, a] of answers.entries()) {
      const want = await direct(i + 1);
      assert.equal(a.id, `r${i + 1}`);
      assert.deepEqual(a.outputs, want.outputs);
      assert.deepEqual(a.outputs[0].shape, [2, 4]);
    }
    const inline = job.tasks.find((t: Json) => t.name === 'inline');
    const out = JSON.parse(inline.attempts[0].output.trim()) as Json;
    assert.deepEqual(out.outputs, (await direct(9)).outputs);
    assert.equal(out.model_version, '1');
  });

  it('a request the model refuses fails the task with the inference message (not retried: http_error)', async () => {
    const sub = await post('/api/jobs', {
      name: 'bad',
      tasks: [
        {
          name: 'wrong-shape',
          run: {
            executor: 'inference',
            model: 'mlp',
            request: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] },
          },
          retry: { maxAttempts: 2, retryOn: ['http_5xx', 'timeout'] },
        },
        { name: 'nope', run: { executor: 'inference', model: 'no-such-model', request: { inputs: [] } } },
      ],
    });
    assert.equal(sub.status, 201);
    const job = await finished(sub.body.id);
    assert.equal(job.state, 'failed');
    const t = job.tasks.find((x: Json) => x.name === 'wrong-shape');
    assert.equal(t.attempts.length, 1, 'a bad request is not retried under retryOn [http_5xx, timeout]');
    assert.match(t.reason, /shape \[1,3\] does not match the model's \[-1,16\]/);
    assert.match(job.tasks.find((x: Json) => x.name === 'nope').reason, /no-such-model/);
    const refused = await post('/api/jobs', {
      name: 'neither',
      tasks: [{ name: 'a', run: { executor: 'inference', model: 'mlp' } }],
    });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /give request .* or inputFile/);
  });

  it('a retried batch goes on from its checkpoint: no answer written twice', async () => {
    // The executor itself, on this Kapok's real inference service (what the scheduler hands it).
    const service = [...liveInstances].at(-1);
    assert.ok(service);
    const exec = inferenceExecutor(inferencePort(service));
    const input = join(dir, 'resume.jsonl');
    const output = join(dir, 'resume-out.jsonl');
    const bad = JSON.stringify({
      id: 'r3',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    writeFileSync(input, `${JSON.stringify(request(1))}\n\n${JSON.stringify(request(2))}\n${bad}\n`);
    const [task] = validateSpec(
      {
        name: 'resume',
        tasks: [
          {
            name: 'b',
            run: { executor: 'inference', model: 'mlp', inputFile: input, outputFile: output },
            checkpoint: { everyS: 0.000001 },
          },
        ],
      },
      { gpus: 0, gpuMemoryMiB: 0, cpu: 8, memoryMiB: 0 },
    ).tasks;
    const saved: CheckpointInput[] = [];
    const ctx = (attempt: number, checkpoint: Checkpoint | null) => ({
      jobId: '00000000-0000-4000-8000-000000000000',
      task: 'b',
      attempt,
      gpus: [],
      spec: task as NonNullable<typeof task>,
      checkpointDir: dir,
      checkpoint,
      signal: new AbortController().signal,
      timeoutMs: null,
      maxOutputBytes: 65536,
      onCheckpoint: async (c: CheckpointInput) => {
        saved.push(c);
      },
    });
    const first = await exec(ctx(1, null));
    assert.equal(first.ok, false);
    assert.match(first.ok ? '' : first.reason, /resume\.jsonl line 4: .*shape \[1,2\]/);
    const last = saved.at(-1) as { data: Uint8Array };
    assert.deepEqual(JSON.parse(Buffer.from(last.data).toString()), {
      done: 3,
      bytes: readFileSync(`${output}.partial`).length,
    });
    // The bad line fixed, attempt 2 gets the checkpoint: lines 1-3 are not sent again.
    writeFileSync(
      input,
      `${JSON.stringify(request(1))}\n\n${JSON.stringify(request(2))}\n${JSON.stringify(request(3))}\n`,
    );
    const ck: Checkpoint = {
      seq: 1,
      attempt: 1,
      data: Buffer.from(last.data),
      uri: null,
      sm3: '',
      createdAt: '',
    };
    const second = await exec(ctx(2, ck));
    assert.equal(second.ok, true, second.ok ? '' : second.reason);
    const ids = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as Json).id);
    assert.deepEqual(ids, ['r1', 'r2', 'r3']);
  });

  it('without the inference capability the executor is refused at submit', async () => {
    const off = await start(tmpDir('kapok-jobs-inf-off-'), false);
    try {
      const r = await fetch(`http://127.0.0.1:${off.port}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'x',
          tasks: [{ name: 'a', run: { executor: 'inference', model: 'mlp', request: {} } }],
        }),
      });
      const body = (await r.json()) as Json;
      assert.equal(r.status, 400);
      assert.equal(body.error.code, 'KAPOK_JOBS_INVALID_SPEC');
      assert.match(body.error.message, /inference is not enabled here/);
    } finally {
      await off.stop('test');
    }
  });
});
