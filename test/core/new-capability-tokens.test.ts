import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

/**
 * Each capability's own adminToken opens its own /api prefix and no other: the jobs, saga and
 * control tokens are tried against every other door, and a gateway API key against all three.
 */

const TOKENS = {
  jobs: 'jobs-admin-token-000001',
  saga: 'saga-admin-token-000001',
  control: 'control-admin-token-001',
} as const;
const DOORS: Record<keyof typeof TOKENS, string> = {
  jobs: '/api/jobs',
  saga: '/api/saga/transactions',
  control: '/api/control/status',
};

describe('jobs, saga and control tokens open only their own door', () => {
  let app: RunningApp;
  before(async () => {
    const yaml = [
      `dataDir: ${tmpDir()}`,
      'http: { host: 127.0.0.1, port: 0 }',
      'log: { level: warn }',
      `jobs: { enabled: true, adminToken: ${TOKENS.jobs}, worker: { gpus: none, slots: 1 } }`,
      `saga: { enabled: true, adminToken: ${TOKENS.saga} }`,
      `control: { enabled: true, adminToken: ${TOKENS.control} }`,
      ...offYaml('jobs', 'saga', 'control'),
    ].join('\n');
    app = await startApp(loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: tmpDir() }), {
      logDestination: captureLogs(),
    });
  });
  after(async () => {
    await app?.stop();
  });

  const get = (path: string, token: string) =>
    fetch(`http://127.0.0.1:${app.port}${path}`, { headers: { authorization: `Bearer ${token}` } });

  for (const owner of Object.keys(TOKENS) as (keyof typeof TOKENS)[]) {
    it(`the ${owner} token: 200 on ${DOORS[owner]}, 401 on the others`, async () => {
      assert.equal((await get(DOORS[owner], TOKENS[owner])).status, 200);
      for (const other of Object.keys(DOORS) as (keyof typeof TOKENS)[]) {
        if (other === owner) continue;
        const r = await get(DOORS[other], TOKENS[owner]);
        assert.equal(r.status, 401, `${owner}'s token on ${DOORS[other]}`);
        assert.doesNotMatch(await r.text(), new RegExp(TOKENS[owner]), 'the token is not echoed');
      }
    });
  }

  it('a POST with another capability token changes nothing (401 before the body is read)', async () => {
    const r = await fetch(`http://127.0.0.1:${app.port}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS.saga}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', tasks: [{ name: 'a', run: { executor: 'noop' } }] }),
    });
    assert.equal(r.status, 401);
    const list = (await (await get('/api/jobs', TOKENS.jobs)).json()) as { jobs: unknown[] };
    assert.ok(Array.isArray(list.jobs));
    assert.equal(list.jobs.length, 0, 'the refused submit stored no job');
  });
});
