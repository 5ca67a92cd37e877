import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { ALL_OFF } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Hot reload from the config file (control.source: file, the default) in a running Kapok: what
 * applies live, what waits for a restart, what is rejected, and what status, /readyz and /metrics say.
 */
describe('hot reload from the config file', () => {
  const dir = tmpDir('kapok-reload-');
  const file = join(dir, 'kapok.yaml');
  const logs = captureLogs();
  let app: RunningApp;
  const SECRET = 'edge-admin-token-never-shown-0123456789';
  const base = () => ({
    ...ALL_OFF,
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    control: { enabled: true, fileDebounceMs: 20 },
  });
  /** The whole file: the base with `over`'s sections put on it (a section given replaces the base's). */
  const text = (over: Record<string, unknown>) => stringify({ ...base(), ...over });
  const write = (over: Record<string, unknown>) => {
    writeFileSync(`${file}.new`, text(over));
    renameSync(`${file}.new`, file);
  };
  const status = async () => (await app.server.inject({ url: '/api/control/status' })).json();
  let applied = 0;
  let rejected = 0;
  const next = async (what: 'applied' | 'rejected') => {
    const want = what === 'applied' ? ++applied : ++rejected;
    const end = Date.now() + 10_000;
    for (;;) {
      const s = await status();
      if (s[what] >= want) return s;
      if (Date.now() > end) throw new Error(`no ${what} #${want}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  /** A revert to the running values leaves nothing pending. */
  const pendingCleared = async () => {
    const end = Date.now() + 10_000;
    while ((await status()).pendingRestart.length && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual((await status()).pendingRestart, []);
  };

  before(async () => {
    write({ log: { level: 'info' } });
    app = await startApp(loadKapokConfig({ file }), { logDestination: logs });
  });
  after(async () => {
    await app?.stop();
  });

  it('applies log.level live and counts it', async () => {
    assert.equal(app.logger.level, 'info');
    const s0 = await status();
    assert.equal(s0.watching, true);
    write({ log: { level: 'debug' } });
    const s = await next('applied');
    assert.equal(app.logger.level, 'debug');
    assert.deepEqual(s.pendingRestart, []);
    assert.ok(s.revisions[0] > s0.revisions[0]);
    const metrics = (await app.server.inject({ url: '/metrics' })).body;
    assert.match(metrics, /^kapok_config_applied_total\{[^}]*\} 1$/m);
  });

  it('reports http.port as pending a restart and keeps serving on the old port', async () => {
    write({ log: { level: 'debug' }, http: { host: '127.0.0.1', port: 1 } });
    const s = await next('applied');
    assert.deepEqual(s.pendingRestart, ['http.port']);
    assert.equal((await app.server.inject({ url: '/healthz' })).statusCode, 200);
    write({ log: { level: 'debug' } });
    await pendingCleared();
  });

  it('a change needing a restart is reported as pending, never half-applied; a revert clears it', async () => {
    write({ log: { level: 'debug' }, shutdownTimeoutMs: 1234 });
    const s = await next('applied');
    assert.deepEqual(s.pendingRestart, ['shutdownTimeoutMs']);
    write({ log: { level: 'debug' } });
    await pendingCleared();
  });

  it('a change to a capability without live reconfiguration waits for a restart; its secret is never shown', async () => {
    write({ log: { level: 'debug' }, edge: { enabled: false, adminToken: SECRET } });
    const s = await next('applied');
    assert.deepEqual(s.pendingRestart, ['edge.adminToken']);
    assert.equal(JSON.stringify(s).includes(SECRET), false);
    assert.equal(logs.text().includes(SECRET), false);
    write({ log: { level: 'debug' } });
    await pendingCleared();
  });

  it('a change that fails validation keeps the running config, and says why in status, /readyz and metrics', async () => {
    write({ log: { level: 'loud' } });
    const s = await next('rejected');
    assert.equal(s.lastError.code, 'KAPOK_CONFIG_INVALID');
    assert.match(s.lastError.message, /^log\.level: expected one of .*found the string "loud"/);
    assert.equal(app.logger.level, 'debug', 'the running level stays');
    const ready = (await app.server.inject({ url: '/readyz' })).json();
    const control = ready.components.find((c: { name: string }) => c.name === 'control');
    assert.match(control.detail.lastError, /^KAPOK_CONFIG_INVALID: log\.level/);
    const metrics = (await app.server.inject({ url: '/metrics' })).body;
    assert.match(metrics, /^kapok_config_rejected_total\{[^}]*\} [1-9]/m);
    const line = logs.lines.find(
      (l) => l.msg === 'configuration change rejected; the running configuration stays',
    );
    assert.equal(line?.code, 'KAPOK_CONFIG_INVALID');
  });

  it('an unknown key is rejected as such', async () => {
    write({ log: { level: 'debug', colour: true } });
    const s = await next('rejected');
    assert.equal(s.lastError.code, 'KAPOK_CONFIG_UNKNOWN_KEY');
    assert.match(s.lastError.message, /log\.colour: unknown key/);
  });

  it('SIGHUP (app.reload) re-reads at once, without waiting for the watch', async () => {
    writeFileSync(file, text({ log: { level: 'warn' } }));
    await app.reload();
    assert.equal(app.logger.level, 'warn');
    applied = (await status()).applied;
  });
});
