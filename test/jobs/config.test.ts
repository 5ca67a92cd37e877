import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema, loadKapokConfig } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import { limitsOf, workerGpus } from '../../src/jobs/capability.js';
import { workerSize } from '../../src/jobs/config.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

const load = (yaml: string, env: Record<string, string> = {}) =>
  loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env, cwd: tmpDir() });

describe('jobs config', () => {
  it('is off by default, with slots and cpu from the machine', () => {
    const c = configSchema.parse({}).jobs;
    assert.equal(c.enabled, false);
    assert.equal(c.worker.slots, null);
    assert.ok(workerSize(c).slots >= 1);
    assert.deepEqual(c.scoring.classes, { low: 0, normal: 100, high: 200, critical: 300 });
  });

  it('takes env overrides and a GPU list; the largest worker follows it', async () => {
    const { config } = load(
      'jobs:\n  worker:\n    gpus: [{ index: 0, memoryMiB: 24576 }, { index: 1, memoryMiB: 81920 }]\n',
      {
        KAPOK_JOBS__ENABLED: 'true',
        KAPOK_JOBS__WORKER__SLOTS: '3',
      },
    );
    assert.equal(config.jobs.enabled, true);
    assert.equal(workerSize(config.jobs).slots, 3);
    const gpus = await workerGpus(config.jobs);
    assert.deepEqual(limitsOf(config.jobs, gpus).gpus, 2);
    assert.equal(limitsOf(config.jobs, gpus).gpuMemoryMiB, 81920);
    // auto without nvidia-smi on the PATH: no GPUs, no error.
    const auto = load('jobs:\n  worker: { nvidiaSmi: /nonexistent/nvidia-smi }\n').config.jobs;
    assert.deepEqual(await workerGpus(auto), []);
  });

  it('refuses a heartbeat too slow for the lease and unknown or malformed keys', () => {
    const refused = (yaml: string, part: RegExp, env: Record<string, string> = {}) =>
      assert.throws(
        () => load(yaml, env),
        (e: unknown) => isKapokError(e) && e.code.startsWith('KAPOK_CONFIG_') && part.test(e.message),
      );
    refused('jobs: { leaseS: 10, heartbeatS: 6 }\n', /jobs\.heartbeatS.*at most half of jobs\.leaseS \(10\)/);
    refused('jobs: { worker: { gpu: 1 } }\n', /jobs\.worker.*gpu/);
    refused('jobs: { worker: { gpus: [{ index: 0 }] } }\n', /jobs\.worker\.gpus/);
  });
});
