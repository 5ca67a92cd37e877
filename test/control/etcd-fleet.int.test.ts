import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createEtcdClient, type EtcdClient } from '../../src/adapters/etcd/client.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import { ALL_OFF } from '../helpers/config.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { captureLogs } from '../helpers/logs.js';

// Two Kapoks on one real etcd (started for this file): a change written to etcd reaches both.
const { skip } = await etcdAvailable();

describe('two Kapoks configured from one etcd', { skip }, () => {
  let etcd: Etcd;
  let client: EtcdClient;
  const apps: RunningApp[] = [];
  const PREFIX = '/kapok/fleet-test/';
  const dirs: string[] = [];
  const fileOf = (name: string, endpoint: string) => {
    // Not tmpDir(): its after() would run right after the before() hook that calls this.
    const dir = mkdtempSync(join(tmpdir(), `kapok-${name}-`));
    dirs.push(dir);
    const file = join(dir, 'kapok.yaml');
    writeFileSync(
      file,
      stringify({
        ...ALL_OFF,
        http: { host: '127.0.0.1', port: 0 },
        dataDir: join(dir, 'data'),
        log: { level: 'info' },
        control: {
          enabled: true,
          source: 'etcd',
          etcd: { endpoints: [endpoint], prefix: PREFIX, callTimeoutMs: 1000, probeIntervalMs: 1000 },
        },
      }),
    );
    return file;
  };
  const status = async (app: RunningApp) => (await app.server.inject({ url: '/api/control/status' })).json();
  const both = async (what: string, check: (s: Record<string, unknown>, app: RunningApp) => boolean) => {
    const end = Date.now() + 20_000;
    for (;;) {
      const ss = await Promise.all(apps.map(status));
      if (ss.every((s, i) => check(s, apps[i] as RunningApp))) return ss;
      if (Date.now() > end) throw new Error(`timed out: ${what}: ${JSON.stringify(ss)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
    await client.put(`${PREFIX}log`, '{ level: warn }');
    for (const name of ['one', 'two'])
      apps.push(
        await startApp(loadKapokConfig({ file: fileOf(name, etcd.endpoint) }), {
          logDestination: captureLogs(),
        }),
      );
  });
  after(async () => {
    for (const app of apps) await app.stop();
    client?.close();
    await etcd?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('starts both on file ⊕ etcd: the etcd value wins over the file', () => {
    for (const app of apps) {
      assert.equal(app.config.log.level, 'warn');
      assert.equal(app.logger.level, 'warn');
    }
  });

  it('a change in etcd applies on both', async () => {
    await client.put(`${PREFIX}log`, '{ level: debug }');
    await both('debug', (_s, app) => app.logger.level === 'debug');
  });

  it('a rejected change changes neither, and both say why', async () => {
    const rev = await client.put(`${PREFIX}log`, '{ level: loud }');
    const ss = await both(
      'rejected',
      (s) => (s.lastError as { revisions: number[] } | null)?.revisions?.[1] === rev,
    );
    for (const [i, s] of ss.entries()) {
      assert.equal((s.lastError as { code: string }).code, 'KAPOK_CONFIG_INVALID');
      assert.match((s.lastError as { message: string }).message, /^log\.level: expected one of/);
      assert.equal(apps[i]?.logger.level, 'debug');
    }
    await client.put(`${PREFIX}log`, '{ level: debug }');
  });

  it('a forced compaction and an etcd kill and restart during the watch: no change missed', async () => {
    for (let i = 0; i < 20; i++) await client.put(`${PREFIX}churn`, String(i));
    await client.delete(`${PREFIX}churn`);
    await client.compact(await client.put(`${PREFIX}log`, '{ level: info }'));
    await both('info after compaction', (_s, app) => app.logger.level === 'info');
    await etcd.kill();
    await etcd.start();
    await client.put(`${PREFIX}log`, '{ level: error }');
    const ss = await both('error after restart', (_s, app) => app.logger.level === 'error');
    // What each applied is what etcd holds now.
    const held = (await client.list(PREFIX)).kvs.map((kv) => `${kv.key}=${kv.value.toString()}`);
    assert.deepEqual(held, [`${PREFIX}log={ level: error }`]);
    for (const s of ss) assert.ok((s.sources as Array<{ kind: string; connected: boolean }>)[1]?.connected);
  });

  it('a Kapok pointed at an unreachable etcd does not start, and says which endpoint (exit 1)', async () => {
    const file = fileOf('down', '127.0.0.1:1');
    await assert.rejects(
      startApp(loadKapokConfig({ file }), { logDestination: captureLogs() }),
      (e: unknown) => {
        assert.ok(isKapokError(e, 'KAPOK_CONTROL_ETCD_UNAVAILABLE'), String(e));
        assert.match((e as Error).message, /127\.0\.0\.1:1/);
        return true;
      },
    );
  });

  it('invalid content in etcd at start is a configuration error naming the key', async () => {
    await client.put(`${PREFIX}http/port`, '"not a port"');
    try {
      const file = fileOf('bad', etcd.endpoint);
      await assert.rejects(
        startApp(loadKapokConfig({ file }), { logDestination: captureLogs() }),
        (e: unknown) => {
          assert.ok(isKapokError(e, 'KAPOK_CONFIG_INVALID'), String(e));
          assert.match((e as Error).message, /^http\.port: expected number/);
          return true;
        },
      );
    } finally {
      await client.delete(`${PREFIX}http/port`);
    }
  });
});
