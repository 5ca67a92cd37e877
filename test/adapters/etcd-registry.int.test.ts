import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createEtcdClient, type EtcdClient } from '../../src/adapters/etcd/client.js';
import { createEtcdRegistry } from '../../src/adapters/etcd/registry.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { until } from '../ports/events.conformance.js';
import { instance, registryConformance } from '../ports/registry.conformance.js';

// A real etcd 3.4 started on free ports for this file (test/helpers/etcd.ts).
const { skip } = await etcdAvailable();

describe('etcd registry against a real etcd', { skip }, () => {
  let etcd: Etcd;
  let client: EtcdClient;
  let n = 0;
  let prefix = '/reg/t0/';
  before(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
  });
  after(async () => {
    client?.close();
    await etcd?.destroy();
  });
  const make = (ttlSeconds = 5) => createEtcdRegistry({ client, prefix, ttlSeconds });

  registryConformance('etcd', {
    make: async () => make(),
    reset: () => {
      prefix = `/reg/t${++n}/`;
    },
  });

  it('the record is a key under a lease with the TTL; a drain revokes it at once', async () => {
    prefix = `/reg/lease${++n}/`;
    const r = make(7);
    await r.register(instance('x'));
    const kv = await client.get(`${prefix}x`);
    assert.ok(kv && kv.lease !== '0', 'the key carries a lease');
    assert.deepEqual(JSON.parse(String(kv?.value)), instance('x'));
    await r.deregister();
    assert.equal(await client.get(`${prefix}x`), null);
    await r.close();
  });

  it('ignores keys under the prefix that are not instance records', async () => {
    prefix = `/reg/junk${++n}/`;
    await client.put(`${prefix}junk`, 'not json');
    await client.put(`${prefix}other`, JSON.stringify(instance('mismatch')));
    await client.put(`${prefix}y`, JSON.stringify({ ...instance('y'), capabilities: 'all' }));
    const r = make();
    await r.register(instance('a'));
    assert.deepEqual(
      r.list().map((i) => i.id),
      ['a'],
    );
    await client.put(`${prefix}z`, '{"id":');
    await client.put(`${prefix}b`, JSON.stringify(instance('b')));
    await until('b seen', () => r.list().length === 2);
    assert.deepEqual(
      r.list().map((i) => i.id),
      ['a', 'b'],
    );
    await r.close();
  });

  it('a SIGKILLed process leaves the list within its TTL + 1 s (lease expiry)', async () => {
    prefix = `/reg/ttl${++n}/`;
    const watcher = make();
    await watcher.register(instance('w'));
    // A separate process registering with TTL 2 s, then killed: no revoke, the keepalives just stop.
    const src = new URL('../../src/adapters/', import.meta.url).pathname;
    const script = [
      `import { createEtcdClient } from '${src}etcd/client.ts';`,
      `import { createEtcdRegistry } from '${src}etcd/registry.ts';`,
      `const client = createEtcdClient({ endpoints: ['${etcd.endpoint}'] });`,
      `const r = createEtcdRegistry({ client, prefix: '${prefix}', ttlSeconds: 2 });`,
      `await r.register(${JSON.stringify(instance('d'))});`,
      "console.log('registered'); setInterval(() => {}, 1000);",
    ].join('\n');
    const child = spawn(process.execPath, [
      '--import',
      import.meta.resolve('tsx'),
      '--input-type=module',
      '-e',
      script,
    ]);
    await once(child.stdout, 'data');
    await until('d seen', () => watcher.list().length === 2);
    await new Promise((r) => setTimeout(r, 2500)); // past one TTL: keepalives do hold it
    assert.equal(watcher.list().length, 2, 'kept alive beyond its TTL while running');
    child.kill('SIGKILL');
    const t0 = Date.now();
    await until('d gone', () => watcher.list().length === 1, 10_000);
    const took = Date.now() - t0;
    assert.ok(took <= 3000, `left after ${took} ms (TTL 2 s + 1 s)`);
    await watcher.close();
  });

  it('survives an etcd restart: the lease is granted anew and the watch relists', async () => {
    prefix = `/reg/restart${++n}/`;
    const a = make(2);
    const b = make(2);
    await a.register(instance('a'));
    await b.register(instance('b'));
    await until('both', () => a.list().length === 2);
    await etcd.kill();
    await etcd.start();
    const c = make(2);
    await c.register(instance('c'));
    await until(
      'a sees c and b after the restart',
      () =>
        a
          .list()
          .map((i) => i.id)
          .join() === 'a,b,c',
      20_000,
    );
    await until('both records back in etcd', () => a.status().connected && b.status().connected, 20_000);
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});
