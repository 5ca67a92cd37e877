import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mlpModel, writeModel } from '../../scripts/onnx-models.js';
import { startInference, until } from './setup.js';

// A first start has no ./models: say so once, not on every poll, and pick models up once it exists.
describe('inference: a repository that does not exist yet', () => {
  it('warns once while it is missing, says when it is readable again, then serves what appears', async () => {
    const repo = join(mkdtempSync(join(tmpdir(), 'kapok-inf-missing-')), 'models');
    const s = await startInference({ pollIntervalMs: 50 }, repo);
    try {
      const warned = () => s.logs.lines.filter((l) => l.msg === 'inference repository cannot be read');
      await new Promise((r) => setTimeout(r, 400)); // several polls
      assert.equal(warned().length, 1, 'one warning per outage');
      assert.equal(warned()[0]?.code, 'KAPOK_INFERENCE_MODEL_NOT_FOUND');
      writeModel(repo, 'mlp', 1, mlpModel());
      await until(async () => (await s.get('/v2/models/mlp/ready')).status === 200, 5000, 'model picked up');
      assert.ok(s.logs.lines.some((l) => l.msg === 'inference repository readable again'));
      assert.equal(warned().length, 1);
    } finally {
      await s.stop();
    }
  });
});
