import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEtcdClient, type EtcdClient } from '../../src/adapters/etcd/client.js';
import { createEtcdConfigSource } from '../../src/adapters/etcd/config-source.js';
import type { ConfigLayer } from '../../src/ports/config-source.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { configSourceConformance } from '../ports/config-source.conformance.js';
import { until } from '../ports/events.conformance.js';

// A real etcd 3.4 started on free ports for this file (test/helpers/etcd.ts).
const { skip } = await etcdAvailable();

describe('etcd config source against a real etcd', { skip }, () => {
  let etcd: Etcd;
  let client: EtcdClient;
  let n = 0;
  let prefix = '';
  before(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
  });
  after(async () => {
    client?.close();
    await etcd?.destroy();
  });
  const fresh = (probeIntervalMs = 60_000) => {
    prefix = `/kapok/t${++n}/`;
    return createEtcdConfigSource({ client, prefix, probeIntervalMs, retryMs: 50 });
  };
  const watchAll = async (s: ReturnType<typeof fresh>) => {
    const changes: ConfigLayer[] = [];
    const problems: string[] = [];
    await s.read();
    s.watch({ onChange: (l) => changes.push(l), onProblem: (e) => problems.push(`${e.code}: ${e.message}`) });
    return { changes, problems, last: () => changes[changes.length - 1]?.tree };
  };

  configSourceConformance('etcd', {
    make: async () => fresh(),
    async write(tree) {
      // One key per top-level section, in one transaction (what `kapok config push` writes).
      const { revision } = await client.list(prefix);
      const { kvs } = await client.list(prefix);
      const puts = Object.entries(tree).map(([k, v]) => [prefix + k, JSON.stringify(v)] as [string, string]);
      const deletes = kvs.map((kv) => kv.key).filter((k) => !puts.some(([p]) => p === k));
      assert.notEqual(await client.commitIfUnchanged(prefix, revision, puts, deletes), null);
    },
    async writeBroken() {
      await client.put(`${prefix}broken`, 'a: [unclosed');
    },
  });

  it('merges finer keys over a section key, whatever their order of writing', async () => {
    const s = fresh();
    const w = await watchAll(s);
    await client.put(`${prefix}gateway/limits`, '{ maxBodyBytes: 10 }');
    await client.put(`${prefix}gateway`, 'limits: { maxBodyBytes: 1, other: 2 }\nenabled: true');
    await until(
      'merged',
      () =>
        JSON.stringify(w.last()) ===
        JSON.stringify({ gateway: { limits: { maxBodyBytes: 10, other: 2 }, enabled: true } }),
    );
    await s.close();
  });

  it('refuses keys with empty segments, "." or "..", and values over 1 MiB, keeping the last good layer', async () => {
    for (const bad of ['a//b', 'a/../b', './a', 'a/', '__proto__/x']) {
      const s = fresh();
      const w = await watchAll(s);
      await client.put(`${prefix}good`, '1');
      await until('good', () => JSON.stringify(w.last()) === '{"good":1}');
      await client.put(prefix + bad, '1');
      await until(`problem for ${bad}`, () => w.problems.length > 0);
      assert.match(w.problems[0] as string, /^KAPOK_CONTROL_BAD_KEY: config key ".*": /);
      assert.equal(JSON.stringify(w.last()), '{"good":1}');
      await assert.rejects(s.read(), (e: { code: string }) => e.code === 'KAPOK_CONTROL_BAD_KEY');
      await s.close();
    }
    const s = fresh();
    const w = await watchAll(s);
    await client.put(`${prefix}big`, `"${'x'.repeat(1024 * 1024)}"`);
    await until('too large', () => w.problems.length > 0);
    assert.match(
      w.problems[0] as string,
      /^KAPOK_CONTROL_VALUE_TOO_LARGE: config key ".*big" holds 1048578 bytes/,
    );
    assert.equal(w.changes.length, 0);
    await s.close();
  });

  it('survives a compaction past its watch: relists and misses no change', async () => {
    const s = fresh();
    const w = await watchAll(s);
    // Cancel the watch by compacting beyond revisions it has not seen: pause delivery by
    // writing many revisions in one go, compact at the newest, then write the value that counts.
    for (let i = 0; i < 50; i++) await client.put(`${prefix}churn`, String(i));
    const rev = await client.put(`${prefix}final`, '"before-compaction"');
    await client.compact(rev);
    await client.put(`${prefix}final`, '"after-compaction"');
    await until(
      'after compaction',
      () => (w.last() as { final?: string } | undefined)?.final === 'after-compaction',
    );
    const held = Object.fromEntries(
      (await client.list(prefix)).kvs.map((kv) => [
        kv.key.slice(prefix.length),
        JSON.parse(kv.value.toString()),
      ]),
    );
    assert.deepEqual(w.last(), held);
    await s.close();
  });

  it('a watch created on a compacted revision relists (the case etcd3#72 loses)', async () => {
    const s = fresh();
    await client.put(`${prefix}a`, '1');
    await s.read();
    // Everything up to now is compacted before the watch starts: its start revision is gone.
    await client.put(`${prefix}a`, '2');
    await client.compact(await client.put(`${prefix}a`, '3'));
    const changes: ConfigLayer[] = [];
    s.watch({ onChange: (l) => changes.push(l), onProblem: () => {} });
    await until('relisted', () => JSON.stringify(changes[changes.length - 1]?.tree) === '{"a":3}');
    assert.ok(s.status().resyncs >= 1, 'the relist is counted');
    assert.match(s.status().detail ?? 'relisted', /compacted|relisted/);
    await s.close();
  });

  it('survives an etcd kill and restart mid-watch: changes made while down and after are applied', async () => {
    const s = fresh();
    const w = await watchAll(s);
    await client.put(`${prefix}a`, '1');
    await until('a=1', () => JSON.stringify(w.last()) === '{"a":1}');
    await etcd.kill();
    await until(
      'not connected',
      () => s.status().connected === false || s.status().detail !== undefined,
      10_000,
    );
    await etcd.start();
    await client.put(`${prefix}a`, '2');
    await client.put(`${prefix}b`, '"x"');
    await until('after restart', () => JSON.stringify(w.last()) === '{"a":2,"b":"x"}', 20_000);
    assert.ok(s.status().resyncs >= 1);
    assert.equal(s.status().connected, true);
    await s.close();
  });

  it('the periodic probe catches a change a silent watch dropped, and counts a resync', async () => {
    // A client whose watch swallows events without an error: the silent listener of nacos#13482.
    const silent: EtcdClient = {
      ...client,
      watch: (p, rev, l) => client.watch(p, rev, { onEvents: () => {}, onEnd: l.onEnd }),
    };
    prefix = `/kapok/t${++n}/`;
    const s = createEtcdConfigSource({ client: silent, prefix, probeIntervalMs: 100, retryMs: 50 });
    const w = await watchAll(s);
    await s.refresh();
    assert.equal(s.status().resyncs, 0, 'nothing missed yet: no resync');
    await client.put(`${prefix}a`, '1');
    await until('the probe found a=1', () => JSON.stringify(w.last()) === '{"a":1}');
    assert.ok(s.status().resyncs >= 1);
    await s.close();
  });

  it('refuses a prefix without slashes at both ends', () => {
    assert.throws(
      () => createEtcdConfigSource({ client, prefix: 'kapok' }),
      (e: { code: string; message: string }) =>
        e.code === 'KAPOK_CONFIG_INVALID' && /control\.etcd\.prefix/.test(e.message),
    );
  });

  it("passes etcd's refusal on as KAPOK_CONTROL_ETCD_FAILED with etcd's reason", async () => {
    await assert.rejects(
      client.compact((await client.revision()) + 1000),
      (e: { code: string; message: string }) =>
        e.code === 'KAPOK_CONTROL_ETCD_FAILED' && /future revision/.test(e.message),
    );
  });

  it('says etcd is unavailable with the endpoint, as KAPOK_CONTROL_ETCD_UNAVAILABLE', async () => {
    const dead = createEtcdClient({ endpoints: ['127.0.0.1:1'], callTimeoutMs: 1000 });
    await assert.rejects(
      dead.list('/kapok/'),
      (e: { code: string; message: string }) =>
        e.code === 'KAPOK_CONTROL_ETCD_UNAVAILABLE' &&
        /127\.0\.0\.1:1/.test(e.message) &&
        /control\.etcd\.endpoints/.test(e.message),
    );
    dead.close();
  });
});
