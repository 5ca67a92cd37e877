import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type OpenAI from 'openai';
import { request } from 'undici';
import { stringify } from 'yaml';
import { kapok, kapokUp, type Running } from '../helpers/cli.js';
import { ALL_OFF } from '../helpers/config.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { REDIS_URL, redisGate } from '../helpers/probes.js';
import { type Gw, startGateway } from './setup.js';

type ApiError = InstanceType<typeof OpenAI.APIError>;
const { skip } = await redisGate();
const msg = [{ role: 'user', content: 'hi' }];

// Two real `kapok up` processes share one Redis (quotas) and one SQLite file (keys). The upstream is
// the fake model server of helpers/fake-llm.ts.
describe('gateway quotas on Redis across two processes (needs Redis)', { skip }, () => {
  let up: FakeLlm;
  let procs: Running[] = [];
  let dir: string;
  let file: string;
  const prefix = `kapok-test-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    up = await startFakeLlm('up');
    dir = mkdtempSync(join(tmpdir(), 'kapok-gw-redis-'));
    file = join(dir, 'kapok.yaml');
    writeFileSync(
      file,
      stringify({
        dataDir: dir,
        log: { requests: false },
        kv: { driver: 'redis', url: REDIS_URL, keyPrefix: prefix },
        ...ALL_OFF, // every capability is on by default: this test runs the gateway alone
        gateway: {
          enabled: true,
          providers: [{ name: 'up', type: 'openai', baseUrl: up.url }],
          models: [{ name: 'qwen', targets: [{ provider: 'up', model: 'q' }] }],
        },
      }),
    );
    procs = await Promise.all([kapokUp({ KAPOK_CONFIG: file }), kapokUp({ KAPOK_CONFIG: file })]);
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await up.close();
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('admits exactly rpm requests per window between both processes', async () => {
    const created = await kapok(['keys', 'create', '--name', 'shared', '--rpm', '25', '--json'], {
      KAPOK_CONFIG: file,
    });
    assert.equal(created.code, 0, created.stderr);
    const { key } = JSON.parse(created.stdout);
    const call = (port: number) =>
      request(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'qwen', messages: msg }),
      }).then(async (r) => {
        await r.body.dump();
        return r.statusCode;
      });
    const ports = procs.map((p) => p.port);
    const statuses = await Promise.all(Array.from({ length: 80 }, (_, i) => call(ports[i % 2] as number)));
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    assert.equal(ok, 25, `admitted ${ok}`);
    assert.equal(limited, 55);
    assert.equal(up.requests.length, 25, 'only admitted requests reached the upstream');
  });
});

/** A TCP proxy in front of Redis that can be cut, to take Redis away from a running Kapok. */
async function redisProxy(): Promise<{ url: string; cut: () => void }> {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describe('gateway quotas when Redis goes away (needs Redis)', { skip }, () => {
  let up: FakeLlm;
  let closed: Gw;
  let open: Gw;
  let closedKey: string;
  let openKey: string;
  before(async () => {
    up = await startFakeLlm('up');
    const gateway = {
      providers: [{ name: 'up', type: 'openai', baseUrl: up.url }],
      models: [{ name: 'qwen', targets: [{ provider: 'up', model: 'q' }] }],
    };
    const proxy = await redisProxy();
    const kv = {
      driver: 'redis',
      url: proxy.url,
      keyPrefix: `kapok-test-${randomBytes(4).toString('hex')}:`,
    };
    closed = await startGateway(gateway, { kv });
    open = await startGateway({ ...gateway, limits: { failOpen: true } }, { kv });
    closedKey = (await closed.createKey()).key;
    openKey = (await open.createKey()).key;
    // Both work while Redis is there.
    await closed
      .client(closedKey)
      .chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'x' }] });
    proxy.cut();
    up.requests.length = 0;
  });
  after(async () => {
    await Promise.all([closed.stop(), open.stop()]);
    await up.close();
  });

  it('fails closed with 503 KAPOK_GATEWAY_QUOTA_UNAVAILABLE by default', async () => {
    const key = closedKey;
    await assert.rejects(
      closed
        .client(key)
        .chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'x' }] }),
      (e: ApiError) => e.status === 503 && e.code === 'KAPOK_GATEWAY_QUOTA_UNAVAILABLE',
    );
    assert.equal(up.requests.length, 0);
  });

  it('admits uncounted with failOpen, and counts it in a metric', async () => {
    const key = openKey;
    const r = await open
      .client(key)
      .chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.choices[0]?.message.content, 'hello from up');
    const metrics = await (await request(`${open.base}/metrics`)).body.text();
    assert.match(metrics, /kapok_gateway_quota_fail_open_total\{[^}]*\} 1/);
  });
});
