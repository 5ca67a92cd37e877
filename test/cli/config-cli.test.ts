import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kapok } from '../helpers/cli.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

describe('kapok config check', () => {
  it('prints ok and exits 0 for a valid file', async () => {
    const file = tmpFile('k.yaml', 'region: foshan\nhttp:\n  port: 9000\n');
    const r = await kapok(['config', 'check', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `ok: ${file}`);
  });

  it('exits 2 with one line naming the key for a bad file', async () => {
    const file = tmpFile('k.yaml', 'http:\n  port: 70000\n');
    const r = await kapok(['config', 'check', file]);
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] as string,
      /^kapok: http\.port: expected <= 65535, found number 70000 .*\[KAPOK_CONFIG_INVALID\]$/,
    );
  });

  it('reports JSON for scripts', async () => {
    const bad = await kapok(['config', 'check', '--json', tmpFile('k.yaml', 'nope: 1\n')]);
    assert.equal(bad.code, 2);
    const doc = JSON.parse(bad.stdout);
    assert.equal(doc.ok, false);
    assert.equal(doc.code, 'KAPOK_CONFIG_UNKNOWN_KEY');
    const good = await kapok(['config', 'check', '--json'], { KAPOK_HTTP__PORT: '81' }, tmpDir());
    assert.deepEqual(JSON.parse(good.stdout), {
      ok: true,
      file: null,
      env: { 'http.port': 'KAPOK_HTTP__PORT' },
    });
  });

  it('accepts every capability of this build enabled at once (none is reported unavailable)', async () => {
    const env = {
      ...Object.fromEntries(
        ['GATEWAY', 'INFERENCE', 'EDGE', 'V2X', 'GM'].map((c) => [`KAPOK_${c}__ENABLED`, 'true']),
      ),
      KAPOK_GM__KEK: '00112233445566778899aabbccddeeff',
    };
    const r = await kapok(['config', 'check', '--json'], env, tmpDir());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).ok, true);
  });
});

describe('kapok config print', () => {
  it('prints the effective config with env overrides applied and secrets hidden', async () => {
    const file = tmpFile(
      'k.yaml',
      'store:\n  driver: postgres\n  url: postgres://kapok:hunter2@db:5432/kapok\n',
    );
    const r = await kapok(['config', 'print', '--json', '--config', file], { KAPOK_REGION: 'zhuhai' });
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(r.stdout);
    assert.equal(cfg.region, 'zhuhai');
    assert.equal(cfg.store.url, '***');
    assert.equal(cfg.http.port, 8080);
    assert.ok(!r.stdout.includes('hunter2'));
  });

  it('prints YAML by default', async () => {
    const r = await kapok(['config', 'print'], {}, tmpDir());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^region: guangzhou$/m);
    assert.match(r.stdout, /^ {2}port: 8080$/m);
  });
});

describe('kapok usage errors', () => {
  it('an unknown command or option exits 2', async () => {
    assert.equal((await kapok(['frobnicate'])).code, 2);
    assert.equal((await kapok(['up', '--no-such-flag'])).code, 2);
  });

  it('--version prints the package version', async () => {
    const r = await kapok(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });
});
