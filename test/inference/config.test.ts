import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { mlpModel } from '../../scripts/onnx-models.js';
import { configSchema } from '../../src/config.js';
import { inferenceSchema, modelConfigSchema, resolveModelConfig } from '../../src/inference/config.js';
import { openSession } from '../../src/inference/execution/session-core.js';

describe('inference config', () => {
  it('defaults, and unknown or out-of-range keys are refused naming the key', () => {
    const d = configSchema.parse({}).inference;
    assert.deepEqual(d, inferenceSchema.parse({}));
    assert.equal(d.repository, './models');
    assert.equal(d.defaults.maxQueue, 1024);
    const unknown = configSchema.safeParse({ inference: { repo: 'x' } });
    assert.equal(unknown.success, false);
    const bad = configSchema.safeParse({ inference: { defaults: { instances: 0 } } });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error?.issues[0]?.path, ['inference', 'defaults', 'instances']);
  });

  it('model config.yaml: version policies, sha256 per version, batching only with maxBatchSize >= 2', () => {
    assert.deepEqual(modelConfigSchema.parse({}).versionPolicy, { latest: 1 });
    assert.equal(modelConfigSchema.parse({ versionPolicy: 'all' }).versionPolicy, 'all');
    assert.deepEqual(modelConfigSchema.parse({ versionPolicy: { specific: [1, '3'] } }).versionPolicy, {
      specific: ['1', '3'],
    });
    assert.equal(modelConfigSchema.safeParse({ versionPolicy: { latest: 0 } }).success, false);
    assert.equal(modelConfigSchema.safeParse({ sha256: { '1': 'abc' } }).success, false);
    assert.equal(modelConfigSchema.safeParse({ sha256: { v1: 'a'.repeat(64) } }).success, false);
    assert.equal(modelConfigSchema.safeParse({ batching: { maxQueueDelayUs: -1 } }).success, false);
    assert.equal(modelConfigSchema.safeParse({ instance: 2 }).success, false);
    const parsed = inferenceSchema.parse({}).defaults;
    // auto (one NUMA node's CPUs) is resolved by the capability from shared.platform.
    assert.equal(parsed.intraOpThreads, 'auto');
    assert.equal(inferenceSchema.safeParse({ defaults: { intraOpThreads: 'all' } }).success, false);
    const defaults = { ...parsed, intraOpThreads: 4 };
    const off = resolveModelConfig(modelConfigSchema.parse({ maxBatchSize: 1, batching: {} }), defaults);
    assert.equal(off.batching, null);
    const on = resolveModelConfig(modelConfigSchema.parse({ maxBatchSize: 8, batching: {}, instances: 3 }), {
      ...defaults,
      timeoutMs: 5,
    });
    assert.deepEqual(on.batching, { maxQueueDelayUs: 500, preferredBatchSizes: [] });
    assert.equal(on.instances, 3);
    assert.equal(on.timeoutMs, 5);
    assert.equal(on.intraOpThreads, 4);
    // Spinning: off unless asked, by the defaults or by one model.
    assert.equal(parsed.intraOpSpinning, false);
    assert.equal(on.intraOpSpinning, false);
    assert.equal(
      resolveModelConfig(modelConfigSchema.parse({ intraOpSpinning: true }), defaults).intraOpSpinning,
      true,
    );
    assert.equal(inferenceSchema.safeParse({ defaults: { intraOpSpinning: 'yes' } }).success, false);
    assert.equal(inferenceSchema.safeParse({ models: { m: { intraOpSpinning: true } } }).success, true);
    // inference.models overrides every config.yaml key but sha256 (docs/configuration.md).
    assert.equal(inferenceSchema.safeParse({ models: { m: { inlineMaxBytes: 0 } } }).success, true);
    assert.equal(inferenceSchema.safeParse({ models: { m: { sha256: {} } } }).success, false);
  });

  it('openSession hands ONNX Runtime the thread count and the spinning choice as a config entry', async () => {
    const seen: unknown[] = [];
    const fakeOrt = {
      InferenceSession: {
        create: async (_file: string, options: unknown) => {
          seen.push(options);
          throw new Error('stop here');
        },
      },
    } as unknown as typeof ort;
    for (const intraOpSpinning of [false, true])
      await assert.rejects(
        openSession(fakeOrt, { file: 'm.onnx', intraOpThreads: 3, intraOpSpinning }),
        /stop here/,
      );
    const spin = (o: unknown) =>
      (o as { extra: { session: { intra_op: { allow_spinning: string } } } }).extra.session.intra_op
        .allow_spinning;
    assert.deepEqual(seen.map(spin), ['0', '1']);
    assert.equal((seen[0] as { intraOpNumThreads: number }).intraOpNumThreads, 3);
    // The real binding accepts the entry (it refuses a non-string value in extra).
    const dir = mkdtempSync(join(tmpdir(), 'kapok-spin-'));
    const file = join(dir, 'model.onnx');
    writeFileSync(file, mlpModel());
    try {
      const real = await openSession(ort, { file, intraOpThreads: 2, intraOpSpinning: false });
      assert.deepEqual(
        real.inputs.map((t) => t.name),
        ['x'],
      );
      await real.release();
      await assert.rejects(
        ort.InferenceSession.create(file, { extra: { session: { intra_op: { allow_spinning: 0 } } } }),
        /must be a string/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
