import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import { createEtcdClient, type EtcdClient } from '../../src/adapters/etcd/client.js';
import { kapok, kapokUp, type Running } from '../helpers/cli.js';
import { ALL_OFF } from '../helpers/config.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { tmpDir } from '../helpers/tmp.js';

// etcd unreachable at start (a real etcd, stopped): `kapok up` starts on the last good etcd layer
// cached in dataDir and says so, then follows etcd once it answers; without a cache it exits 1.
const { skip } = await etcdAvailable();
const PREFIX = '/kapok/downtest/';

describe('start while etcd is unreachable', { skip }, () => {
  let etcd: Etcd;
  let client: EtcdClient;
  let up: Running | undefined;
  const dir = tmpDir('kapok-etcd-down-');
  const config = (dataDir: string) => {
    const file = join(dir, `${dataDir}.yaml`);
    writeFileSync(
      file,
      stringify({
        ...ALL_OFF,
        http: { host: '127.0.0.1', port: 0 },
        dataDir: join(dir, dataDir),
        shutdownDelayMs: 0,
        control: {
          enabled: true,
          source: 'etcd',
          etcd: { endpoints: [etcd.endpoint], prefix: PREFIX, callTimeoutMs: 1000, probeIntervalMs: 1000 },
        },
      }),
    );
    return file;
  };
  const api = async (path: string) => {
    const r = await request(`http://127.0.0.1:${up?.port}${path}`);
    return r.body.text();
  };
  const stop = async () => {
    up?.child.kill('SIGTERM');
    await up?.exited;
    up = undefined;
  };

  before(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
    await client.put(`${PREFIX}control/labels`, '{ from: etcd }');
  });
  after(async () => {
    up?.child.kill('SIGKILL');
    await up?.exited;
    client?.close();
    await etcd?.destroy();
  });

  it('a start on etcd caches the etcd layer in dataDir (mode 0600)', async () => {
    up = await kapokUp({}, ['--config', config('cached')]);
    await stop();
    const file = join(dir, 'cached', 'control', 'etcd-last-good.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(doc.prefix, PREFIX);
    assert.deepEqual(doc.tree, { control: { labels: { from: 'etcd' } } });
  });

  it('with etcd down it starts on the cache, says so in the log and /readyz, and catches up when etcd returns', async () => {
    await etcd.stop();
    up = await kapokUp({}, ['--config', config('cached')]);
    const warned = up.lines.find((l) => String(l.msg).startsWith('etcd unreachable at start'));
    assert.ok(warned, JSON.stringify(up.lines));
    const status = JSON.parse(await api('/api/control/status'));
    assert.deepEqual(status.labels, { from: 'etcd' }, 'the cached etcd layer is in force');
    assert.ok(status.startedFromCache.revision > 0);
    const ready = await api('/readyz');
    assert.match(ready, /started on the last good configuration cached at revision/);

    await etcd.start();
    await client.put(`${PREFIX}log`, '{ level: error }');
    const end = Date.now() + 20_000;
    let s = status;
    while (Date.now() < end) {
      s = JSON.parse(await api('/api/control/status'));
      if (s.applied >= 1 && s.sources[1].connected) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(s.applied >= 1, true, JSON.stringify(s));
    assert.ok(s.sources[1].resyncs >= 1);
    assert.match(await api('/metrics'), /^kapok_config_watch_resyncs_total\{[^}]*\} [1-9]/m);
    await stop();
    const doc = JSON.parse(readFileSync(join(dir, 'cached', 'control', 'etcd-last-good.json'), 'utf8'));
    assert.deepEqual(doc.tree.log, { level: 'error' }, 'the accepted change was cached too');
  });

  it('with etcd down and no cache it exits 1 naming the endpoint and the missing cache', async () => {
    await etcd.stop();
    const r = await kapok(['up', '--config', config('empty')]);
    await etcd.start();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`etcd at ${etcd.endpoint}.*no last good configuration is cached`));
    assert.match(r.stderr, /\[KAPOK_CONTROL_ETCD_UNAVAILABLE\]/);
  });
});
