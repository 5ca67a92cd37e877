import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

/**
 * The Kapok's own worker reads its GPUs again on each heartbeat (jobs.worker.gpus: auto), as pull
 * workers do. The one fake: nvidia-smi, a script first on PATH printing recorded lines
 * (test/fixtures/jobs/) from a file the test swaps; it cannot show a driver that hangs or fails
 * half-way (the real call has a 5 s timeout and counts a failure as no GPUs).
 */
const OPERATOR = 'operator-token-0000001';
const fixture = (name: string) => new URL(`../fixtures/jobs/${name}`, import.meta.url).pathname;

describe('jobs: the local worker re-reads nvidia-smi', () => {
  const bin = tmpDir('kapok-gpu-refresh-bin-');
  const lines = join(bin, 'gpus.txt');
  const path = process.env.PATH;
  let app: RunningApp;
  let base: string;
  const metric = async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return Number(/^kapok_jobs_gpus\{kind="total"[^}]*\} (\d+)$/m.exec(text)?.[1]);
  };
  const submit = (gpus: number) =>
    fetch(`${base}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: `g${gpus}`,
        tasks: [{ name: 't', run: { executor: 'noop' }, resources: { gpus } }],
      }),
    });

  before(async () => {
    copyFileSync(fixture('nvidia-smi-mixed.txt'), lines);
    writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\ncat ${lines}\n`);
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    process.env.PATH = `${bin}:${path}`;
    const yaml = [
      `dataDir: ${tmpDir('kapok-gpu-refresh-')}`,
      'http: { host: 127.0.0.1, port: 0 }',
      'log: { level: warn }',
      'admin:',
      '  tokens:',
      `    - { name: ops, role: operator, token: ${OPERATOR} }`,
      'jobs:',
      '  enabled: true',
      '  pollMs: 50',
      '  leaseS: 1',
      '  heartbeatS: 0.1',
      '  executors: [noop]',
      '  worker: { gpus: auto, slots: 4 }',
      ...offYaml('jobs'),
    ].join('\n');
    app = await startApp(loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: tmpDir() }), {
      logDestination: captureLogs(),
    });
    base = `http://127.0.0.1:${app.port}`;
  });
  after(async () => {
    process.env.PATH = path;
    await app?.stop();
  });

  it('counts GPUs that appear after the start, and gives them to a task', async () => {
    assert.equal(await metric(), 3);
    const refused = await submit(4);
    assert.equal(refused.status, 400);
    assert.match(JSON.stringify(await refused.json()), /gpus 4 > 3/);
    copyFileSync(fixture('nvidia-smi-8xa100.txt'), lines);
    for (let i = 0; i < 300 && (await metric()) !== 8; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await metric(), 8);
    const res = await submit(4);
    assert.equal(res.status, 201, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    type Job = { state?: string; tasks?: Array<{ attempts: Array<{ gpus: number[] }> }> };
    let job: Job = {};
    for (let i = 0; i < 300 && job.state !== 'succeeded'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = (await (
        await fetch(`${base}/api/jobs/${id}`, { headers: { authorization: `Bearer ${OPERATOR}` } })
      ).json()) as Job;
    }
    assert.equal(job.state, 'succeeded');
    assert.equal(job.tasks?.[0]?.attempts[0]?.gpus.length, 4);
  });
});
