import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { configSchema, loadKapokConfig } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import { ALL_OFF, testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

// Without etcd the registry is this process's own (the memory adapter): the API lists itself.
describe('service registry in one process', () => {
  let app: RunningApp;
  before(async () => {
    const config = testConfig({
      ...ALL_OFF,
      dataDir: tmpDir(),
      http: { host: '127.0.0.1', port: 0 },
      control: { enabled: true, labels: { zone: 'z1' } },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: captureLogs() });
  });
  after(() => app?.stop());

  it('GET /api/control/instances lists this instance; /readyz and /metrics count it', async () => {
    const r = await app.server.inject({ url: '/api/control/instances' });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json();
    assert.equal(body.registry.kind, 'memory');
    assert.equal(body.instances.length, 1);
    assert.equal(body.instances[0].http, `http://127.0.0.1:${app.port}`);
    assert.deepEqual(body.instances[0].labels, { zone: 'z1' });
    const ready = (await app.server.inject({ url: '/readyz' })).json();
    assert.equal(JSON.stringify(ready).includes('"instances":1'), true, JSON.stringify(ready));
    const metrics = (await app.server.inject({ url: '/metrics' })).body;
    assert.match(metrics, /^kapok_registry_instances\{[^}]*\} 1$/m);
  });

  it('refuses a lease TTL or prefix out of range, naming the key', () => {
    assert.equal(configSchema.parse({}).control.registry.ttlSeconds, 10);
    for (const [bad, key] of [
      ['ttlSeconds: 1', 'control.registry.ttlSeconds'],
      ['ttlSeconds: 301', 'control.registry.ttlSeconds'],
      ['prefix: /a//b/', 'control.registry.prefix'],
      ['prefix: nope', 'control.registry.prefix'],
    ] as const) {
      const file = tmpFile('k.yaml', `control:\n  registry:\n    ${bad}\n`);
      assert.throws(
        () => loadKapokConfig({ file, env: {} }),
        (e: unknown) => isKapokError(e) && e.code === 'KAPOK_CONFIG_INVALID' && e.message.startsWith(key),
        bad,
      );
    }
  });
});
