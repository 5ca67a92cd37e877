import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config.js';
import { inferenceSchema, modelConfigSchema, resolveModelConfig } from '../../src/inference/config.js';

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
  });
});
