import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import type { InstanceInfo } from '../../src/ports/registry.js';
import { kapok, kapokUp, type Running } from '../helpers/cli.js';
import { ALL_OFF } from '../helpers/config.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { tmpDir } from '../helpers/tmp.js';

// Three `kapok up` processes on one real etcd (started for this file) see each other in the
// service registry; a SIGKILLed one leaves within its TTL + 1 s, a stopped (drained) one at once.
const { skip } = await etcdAvailable();
const ADMIN = 'registry-admin-token-0123456789';

describe('service registry across kapok processes', { skip }, () => {
  let etcd: Etcd;
  const procs: Record<string, Running> = {};
  const files: Record<string, string> = {};
  const dir = tmpDir('kapok-reg-');
  const write = (name: string, ttlSeconds: number, extra: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        ...ALL_OFF,
        http: { host: '127.0.0.1', port: 0 },
        dataDir: join(dir, name),
        shutdownDelayMs: 0,
        control: {
          enabled: true,
          source: 'etcd',
          labels: { name },
          etcd: { endpoints: [etcd.endpoint], prefix: '/kapok/regtest/', callTimeoutMs: 1000 },
          registry: { ttlSeconds, prefix: '/kapok-registry-test/' },
          ...extra,
        },
      }),
    );
    files[name] = file;
    return file;
  };
  const list = async (token: string | null = ADMIN) => {
    const r = await request(`http://127.0.0.1:${procs.a?.port}/api/control/instances`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const body = (await r.body.json()) as { instances: InstanceInfo[] };
    return { status: r.statusCode, body };
  };
  const names = async () =>
    (await list()).body.instances
      .map((i) => i.labels.name)
      .sort()
      .join();
  const waitFor = async (what: string, want: string, timeoutMs = 20_000) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const got = await names();
      if (got === want) return;
      if (Date.now() > end) throw new Error(`${what}: want ${want}, have ${got}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    etcd = await startEtcd();
    procs.a = await kapokUp({}, ['--config', write('a', 10, { adminToken: ADMIN })]);
    procs.b = await kapokUp({}, ['--config', write('b', 2)]);
    procs.c = await kapokUp({}, ['--config', write('c', 30)]);
  });
  after(async () => {
    for (const p of Object.values(procs)) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    await etcd?.destroy();
  });

  it('each instance registers its record; all see all', async () => {
    await waitFor('all three', 'a,b,c');
    const { body } = await list();
    const b = body.instances.find((i) => i.labels.name === 'b') as InstanceInfo;
    assert.equal(b.region, 'guangzhou');
    assert.equal(b.http, `http://127.0.0.1:${procs.b?.port}`);
    assert.deepEqual(b.capabilities, ['control']);
    assert.match(b.version, /^\d+\.\d+\.\d+/);
    assert.ok(Date.parse(b.startedAt) > Date.now() - 300_000);
    assert.equal(b.grpc, null);
    assert.equal(b.mqtt, null);
  });

  it('the API takes the admin guard: no token or a wrong one is refused', async () => {
    assert.equal((await list(null)).status, 401);
    assert.equal((await list('wrong-token-0123456789abc')).status, 401);
  });

  it('kapok instances list prints the fleet (table and --json)', async () => {
    const url = `http://127.0.0.1:${procs.a?.port}`;
    const json = await kapok(['instances', 'list', '--json', '--url', url, '--config', files.a as string]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).instances.length, 3);
    const text = await kapok(['instances', 'list', '--url', url, '--config', files.a as string]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID\s+REGION\s+VERSION\s+HTTP/);
    assert.match(text.stdout, /name=b/);
    const refused = await kapok(['instances', 'list', '--url', url, '--config', files.b as string]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\[KAPOK_HTTP_UNAUTHORIZED\]/);
  });

  it('a SIGKILLed instance (TTL 2 s) leaves within TTL + 1 s', async () => {
    procs.b?.child.kill('SIGKILL');
    await procs.b?.exited;
    const t0 = Date.now();
    await waitFor('b gone', 'a,c', 10_000);
    const took = Date.now() - t0;
    assert.ok(took <= 3000, `left after ${took} ms`);
  });

  it('a stopped (drained) instance leaves at once, long before its TTL (30 s)', async () => {
    const t0 = Date.now();
    procs.c?.child.kill('SIGTERM');
    await waitFor('c gone', 'a', 10_000);
    const took = Date.now() - t0;
    assert.ok(took <= 2000, `left after ${took} ms`);
    assert.equal(await procs.c?.exited, 0);
  });
});
