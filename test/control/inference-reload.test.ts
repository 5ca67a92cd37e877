import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import { mlpModel } from '../../scripts/onnx-models.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { ALL_OFF } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';
import { makeRepository, mlpRow, until } from '../inference/setup.js';

// inference.models.<name> changed in the watched file under continuous load: the model's version
// is reloaded with the new batching beside the serving one and switched in; no request fails.
describe('inference per-model config applied live', () => {
  const dir = tmpDir('kapok-infreload-');
  const file = join(dir, 'kapok.yaml');
  const repo = makeRepository({ mlp: mlpModel() });
  let app: RunningApp;
  const write = (inference: Record<string, unknown>) =>
    writeFileSync(
      file,
      stringify({
        ...ALL_OFF,
        dataDir: join(dir, 'data'),
        http: { host: '127.0.0.1', port: 0 },
        grpc: { port: 0 },
        log: { level: 'info', requests: false },
        control: { enabled: true, fileDebounceMs: 0 },
        inference: { enabled: true, repository: repo, pollIntervalMs: 0, ...inference },
      }),
    );
  const infer = async (rows: number) => {
    const r = await request(`http://127.0.0.1:${app.port}/v2/models/mlp/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 16], data: Array(rows).fill(mlpRow(3)) }],
      }),
    });
    return { status: r.statusCode, text: await r.body.text() };
  };

  before(async () => {
    write({});
    app = await startApp(loadKapokConfig({ file }), { logDestination: captureLogs() });
  });
  after(() => app?.stop());

  it('a batching change under load: zero failed requests; a restart-only key is reported pending', async () => {
    assert.equal((await infer(9)).status, 200, 'not batched yet: any first dimension');
    let running = true;
    const statuses: number[] = [];
    const loops = Array.from({ length: 4 }, async () => {
      while (running) statuses.push((await infer(1)).status);
    });
    await until(() => statuses.length > 20, 10_000, 'load running');
    write({
      pollIntervalMs: 5000,
      models: { mlp: { maxBatchSize: 8, batching: { maxQueueDelayUs: 2000 } } },
    });
    await app.reload();
    // Batched now: a request over maxBatchSize 8 is refused by the new version's shape check.
    let last = { status: 0, text: '' };
    await until(
      async () => {
        last = await infer(9);
        return last.status === 400;
      },
      30_000,
      'batched settings serving',
    );
    assert.match(last.text, /exceeds the model's maxBatchSize 8/);
    const switched = statuses.length;
    await until(() => statuses.length > switched + 40, 10_000, 'load after the switch');
    running = false;
    await Promise.all(loops);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'no request fails during the change',
    );
    const status = (await (await request(`http://127.0.0.1:${app.port}/api/control/status`)).body.json()) as {
      pendingRestart: string[];
      lastError: unknown;
    };
    assert.deepEqual(status.pendingRestart, ['inference.pollIntervalMs']);
    assert.equal(status.lastError, null);
  });
});
