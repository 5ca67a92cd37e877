import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kapok } from '../helpers/cli.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

const config = (extra = '') =>
  tmpFile(
    'kapok.yaml',
    `dataDir: ${tmpDir()}\ngateway:\n  enabled: true\n  providers: [{ name: vllm-a, type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: VLLM_KEY }]\n  models: [{ name: qwen, targets: [{ provider: vllm-a, model: q }] }]\n${extra}`,
  );

describe('gateway from the command line', () => {
  it('kapok up exits 2 naming an unset apiKeyEnv', async () => {
    const r = await kapok(['up', '--config', config()], { KAPOK_HTTP__PORT: '0' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /gateway\.providers\[0\]\.apiKeyEnv names VLLM_KEY, which is not set/);
  });

  it('kapok config print shows the resolved upstream key and admin token as ***', async () => {
    const file = config('  auth: { adminToken: "admin-token-0123456789" }\n');
    const r = await kapok(['config', 'print', '--json', '--config', file], {
      VLLM_KEY: 'sk-upstream-secret-1',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('sk-upstream-secret-1') && !r.stdout.includes('admin-token-0123456789'));
    const shown = JSON.parse(r.stdout);
    assert.equal(shown.gateway.providers[0].apiKey, '***');
    assert.equal(shown.gateway.auth.adminToken, '***');
  });

  it('kapok config check names a target pointing at an unknown provider', async () => {
    const file = tmpFile(
      'kapok.yaml',
      'gateway:\n  providers: [{ name: a, type: openai, baseUrl: "http://h/v1" }]\n  models: [{ name: m, targets: [{ provider: b, model: x }] }]\n',
    );
    const r = await kapok(['config', 'check', file]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /gateway\.models\.0\.targets\.0\.provider|gateway\.models\[0\]\.targets\[0\]\.provider/,
    );
    assert.match(r.stderr, /names provider b/);
  });

  it('kapok keys: usage errors exit 2, unknown --models names the configured ones', async () => {
    const file = config();
    const bad = await kapok(['keys', 'create', '--name', 'x', '--rpm', '0', '--config', file]);
    assert.equal(bad.code, 2);
    const models = await kapok(['keys', 'create', '--name', 'x', '--models', 'qwen,nope', '--config', file]);
    assert.equal(models.code, 1);
    assert.match(models.stderr, /"nope" not in gateway\.models \(qwen\)/);
    const ok = await kapok(['keys', 'create', '--name', 'x', '--models', 'qwen', '--config', file]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^sk-kapok-[0-9a-f]{16}-[A-Za-z0-9_-]{43}\n$/);
    assert.match(ok.stderr, /shown only this once/);
  });
});
