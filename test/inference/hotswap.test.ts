import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mlpModel } from '../../scripts/onnx-models.js';
import { makeRepository, mlpRow, type Server, startInference, until, writeConfig } from './setup.js';

/**
 * Hot update under load: a load generator keeps calling the model while versions appear in the
 * repository. No request may fail; responses move to the new version; a corrupt file or a bad
 * sha256 leaves the serving version in place and shows the error in metadata and ready state.
 */

let s: Server;
before(async () => {
  s = await startInference({ pollIntervalMs: 50 }, makeRepository({ mlp: mlpModel() }));
});
after(() => s.stop());

/** Versions appear the way operators should publish them: written aside, then renamed into place. */
function publish(version: number, files: Record<string, Uint8Array | string>): void {
  const tmp = mkdtempSync(join(s.repo, '.incoming-'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(tmp, name), data);
  renameSync(tmp, join(s.repo, 'mlp', String(version)));
}

const ROW = mlpRow(5);
const infer = (rows = 1) =>
  s.post('/v2/models/mlp/infer', {
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [rows, 16], data: Array.from({ length: rows }, () => ROW) },
    ],
  });

interface Load {
  stop(): Promise<void>;
  results: Array<{ status: number; version: string; first: number }>;
}

function loadGenerator(concurrency = 4): Load {
  let running = true;
  const results: Load['results'] = [];
  // Loop 0 sends bodies over 64 KiB: they are decoded on the decoder thread while a swap may happen.
  const loops = Array.from({ length: concurrency }, async (_, i) => {
    while (running) {
      const r = await infer(i === 0 ? 400 : 1);
      results.push({
        status: r.status,
        version: r.body?.model_version,
        first: r.body?.outputs?.[0]?.data?.[0],
      });
    }
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('inference hot update', () => {
  it('a new version is verified, warmed and switched in under load with zero failed requests', async () => {
    const v1 = (await infer()).body.outputs[0].data[0];
    const load = loadGenerator();
    await until(() => load.results.length > 20, 10_000, 'load running');
    const v2bytes = mlpModel({ bias: 10 });
    const sha = createHash('sha256').update(v2bytes).digest('hex');
    publish(2, { 'model.onnx': v2bytes, 'model.onnx.sha256': `${sha}  model.onnx\n` });
    await until(() => load.results.some((r) => r.version === '2'), 15_000, 'version 2 serving');
    const switchedAt = load.results.findIndex((r) => r.version === '2');
    await until(() => load.results.length > switchedAt + 40, 10_000, 'more load after the switch');
    await load.stop();

    const failed = load.results.filter((r) => r.status !== 200);
    assert.deepEqual(failed, [], 'no request fails during the swap');
    for (const r of load.results) assert.equal(r.first, r.version === '1' ? v1 : r.first);
    const v2 = load.results.find((r) => r.version === '2')?.first as number;
    assert.ok(Math.abs(v2 - v1 - 10) < 1e-3, `version 2 outputs (${v2}) are version 1's (${v1}) + 10`);
    // After the switch only version 2 answers (latest: 1), and version 1 is unloaded.
    assert.ok(load.results.slice(switchedAt + 8).every((r) => r.version === '2'));
    await until(
      async () => (await s.get('/v2/models/mlp/versions/1/ready')).status === 404,
      10_000,
      'v1 unloaded',
    );
    assert.ok(s.logs.lines.some((l) => l.msg === 'inference model version unloaded' && l.version === '1'));
  });

  it('a corrupt model.onnx keeps the old version serving and shows the error', async () => {
    const load = loadGenerator(2);
    publish(3, { 'model.onnx': Buffer.from('this is not an ONNX model') });
    await until(
      async () =>
        (await s.get('/v2/models/mlp')).body.state?.some(
          (v: { version: string; state: string }) => v.version === '3' && v.state === 'UNAVAILABLE',
        ),
      15_000,
      'version 3 failed',
    );
    await until(() => load.results.length > 10, 10_000, 'load running');
    await load.stop();
    assert.deepEqual(
      load.results.filter((r) => r.status !== 200 || r.version !== '2'),
      [],
    );
    const meta = await s.get('/v2/models/mlp');
    assert.deepEqual(meta.body.versions, ['2']);
    const v3 = meta.body.state.find((v: { version: string }) => v.version === '3');
    assert.match(v3.reason, /KAPOK_INFERENCE_LOAD_FAILED/);
    const ready = await s.get('/v2/models/mlp/versions/3/ready');
    assert.equal(ready.status, 400);
    assert.match(ready.body.error, /version 3 is not ready: cannot load/);
    assert.equal((await s.get('/v2/models/mlp/ready')).status, 200);
    assert.ok(s.logs.lines.some((l) => l.code === 'KAPOK_INFERENCE_LOAD_FAILED' && l.version === '3'));
  });

  it('a sha256 mismatch (config.yaml or model.onnx.sha256) is not loaded; the old version keeps serving', async () => {
    publish(4, {
      'model.onnx': mlpModel({ bias: 20 }),
      'model.onnx.sha256': `${'0'.repeat(64)}  model.onnx\n`,
    });
    await until(
      async () =>
        (await s.get('/v2/models/mlp')).body.state?.some(
          (v: { version: string; state: string }) => v.version === '4' && v.state === 'UNAVAILABLE',
        ),
      15_000,
      'version 4 refused',
    );
    const meta = await s.get('/v2/models/mlp');
    assert.deepEqual(meta.body.versions, ['2']);
    assert.match(
      meta.body.state.find((v: { version: string }) => v.version === '4').reason,
      /^mlp\/4\/model\.onnx: sha256 [0-9a-f]{64} differs from the expected 0{64}.*KAPOK_INFERENCE_CHECKSUM/,
    );
    assert.ok(!JSON.stringify(meta.body).includes(s.repo), 'no server path in what clients see');
    assert.equal((await infer()).body.model_version, '2');

    // The same through config.yaml: a wrong digest for version 5, then the right one loads it.
    const v5 = mlpModel({ bias: 30 });
    writeConfig(s.repo, 'mlp', `sha256:\n  "5": "${'a'.repeat(64)}"\n`);
    publish(5, { 'model.onnx': v5 });
    await until(
      async () =>
        (await s.get('/v2/models/mlp')).body.state?.some(
          (v: { version: string; reason: string | null }) =>
            v.version === '5' && /CHECKSUM/.test(v.reason ?? ''),
        ),
      15_000,
      'version 5 refused',
    );
    assert.equal((await infer()).body.model_version, '2');
    writeConfig(s.repo, 'mlp', `sha256:\n  "5": "${createHash('sha256').update(v5).digest('hex')}"\n`);
    await until(async () => (await infer()).body.model_version === '5', 15_000, 'version 5 serving');
  });

  it('a broken config.yaml keeps the previous settings and is reported', async () => {
    writeConfig(s.repo, 'mlp', 'maxQueue: -3\n');
    await until(
      () => s.logs.lines.some((l) => l.code === 'KAPOK_INFERENCE_MODEL_CONFIG'),
      10_000,
      'config rejected',
    );
    assert.equal((await infer()).status, 200);
    const idx = await s.post('/v2/repository/index', {});
    assert.match(JSON.stringify(idx.body), /mlp\/config.yaml: maxQueue/);
    assert.ok(!JSON.stringify(idx.body).includes(s.repo), 'no server path in the index');
  });

  it('loading a model that is not on disk names it, never the repository path (the log has it)', async () => {
    const r = await s.post('/v2/repository/models/ghost/load', {});
    assert.equal(r.status, 404);
    assert.match(r.body.error, /model 'ghost' has no version folder/);
    assert.ok(!JSON.stringify(r.body).includes(s.repo), JSON.stringify(r.body));
    assert.ok(s.logs.lines.some((l) => l.model === 'ghost' && l.repository === s.repo));
  });

  it('replacing model.onnx of the serving version with a corrupt file keeps the loaded one', async () => {
    const dir = join(s.repo, 'mlp', '5');
    mkdirSync(dir, { recursive: true });
    writeConfig(s.repo, 'mlp', '{}\n'); // no digest pinned any more
    writeFileSync(join(dir, 'model.onnx.tmp'), Buffer.from('garbage'));
    renameSync(join(dir, 'model.onnx.tmp'), join(dir, 'model.onnx'));
    await until(
      async () =>
        (await s.get('/v2/models/mlp')).body.state?.some(
          (v: { version: string; state: string; reason: string | null }) =>
            v.version === '5' && v.state === 'READY' && v.reason,
        ),
      15_000,
      'reload failure recorded',
    );
    const r = await infer();
    assert.equal(r.status, 200);
    assert.equal(r.body.model_version, '5');
  });
});
