import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gpusOf, parseGpuFlag } from '../../src/jobs/gpus.js';
import { tmpDir } from '../helpers/tmp.js';

/** `kapok worker --gpus`: parsing, and what each form reports (nvidia-smi: recorded lines, below). */
describe('kapok worker --gpus', () => {
  const dir = tmpDir('kapok-gpu-flag-');
  // The one fake: nvidia-smi (no GPU here), printing the recorded mixed-host lines.
  const smi = join(dir, 'nvidia-smi');
  const fixture = new URL('../fixtures/jobs/nvidia-smi-mixed.txt', import.meta.url).pathname;
  writeFileSync(smi, `#!/bin/sh\ncat ${fixture}\n`);
  chmodSync(smi, 0o755);

  it('parses auto, none, a count and index:memMiB lists; refuses the rest naming the fix', () => {
    assert.deepEqual(parseGpuFlag('auto'), { kind: 'auto' });
    assert.deepEqual(parseGpuFlag('0'), { kind: 'none' });
    assert.deepEqual(parseGpuFlag('2'), { kind: 'count', n: 2 });
    assert.deepEqual(parseGpuFlag('0:81920, 3:40960'), {
      kind: 'list',
      gpus: [
        { index: 0, totalMiB: 81920, usedMiB: 0 },
        { index: 3, totalMiB: 40960, usedMiB: 0 },
      ],
    });
    for (const bad of ['all', '0:', '0:1,0:2', '-1', '1.5'])
      assert.throws(() => parseGpuFlag(bad), /--gpus .*use auto, none, a count/, bad);
  });

  it('auto and N read nvidia-smi; N without it counts GPUs of unknown memory', async () => {
    const auto = await gpusOf({ kind: 'auto' }, smi);
    assert.deepEqual(auto[0], { index: 0, totalMiB: 24576, usedMiB: 1131 });
    assert.equal(auto.length, 3);
    const two = await gpusOf({ kind: 'count', n: 2 }, smi);
    assert.deepEqual(
      two.map((g) => g.index),
      [0, 1],
    );
    assert.equal(two[1]?.usedMiB, 23990);
    const blind = await gpusOf({ kind: 'count', n: 2 }, join(dir, 'missing'));
    assert.deepEqual(blind, [
      { index: 0, totalMiB: 0, usedMiB: 0 },
      { index: 1, totalMiB: 0, usedMiB: 0 },
    ]);
    assert.deepEqual(await gpusOf({ kind: 'none' }, smi), []);
  });
});
