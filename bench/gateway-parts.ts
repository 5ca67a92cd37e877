/**
 * Where a gateway request's CPU goes, in two halves (issue 24). Not part of `npm run bench`; run it
 * alone on a quiet machine:
 *
 *   npm run build && node --import tsx bench/gateway-parts.ts
 *   KAPOK_BENCH_PARTS_ROUNDS=9 KAPOK_BENCH_PARTS_CALLS=50000 KAPOK_BENCH_PARTS_REQUESTS=3000 ...
 *   KAPOK_BENCH_PARTS_ONLY=parts | processes
 *
 * 1. Parts, in this process: the CPU time (process.cpuUsage) of each piece of work Kapok adds to a
 *    chat completion beyond proxying it, called as the request path calls it, with the gateway
 *    bench's settings (memory KV quotas with limits so high they never refuse, usage into SQLite):
 *    API-key authentication (Authenticator + KeyService, key cached), quota admit + x-ratelimit-*
 *    headers + settle, one usage record (UsageRecorder into SqliteStore, gateway.usage's default batch),
 *    the request's two spans (SERVER + CLIENT, non-recording as with no exporter), the request id.
 *    Rounds alternate between parts.
 * 2. Processes, closed loop: Kapok's CPU per request (/proc utime + stime: the kernel's share of the
 *    loopback writes included) beside two same-run floors on the same core: a bare node:http
 *    reverse proxy with an undici Pool (what the gateway bench calls the Node floor) and the same
 *    proxy as one Fastify route (the framework's own cost). All three stay up; batches of requests
 *    alternate between them, so a VM's speed drift hits each alike. Pinned as in `npm run bench --
 *    gateway`: Kapok and the floors on core 0, the mock upstream and this generator on core 1.
 *
 * What the parts do not add up to is the rest of Kapok's request path, spread thin: its hooks, body
 * validation, routing, the upstream body rewrite and usage read, response headers, metrics, and the
 * promises and objects a request allocates. Baseline: each other, in the same run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { Pool } from 'undici';
import { createMemoryKV } from '../src/adapters/memory/kv.js';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';
import type { Logger } from '../src/core/log.js';
import { createTracing } from '../src/core/tracing.js';
import { Authenticator } from '../src/gateway/auth/index.js';
import { KeyStore } from '../src/gateway/auth/key-store.js';
import { KeyService } from '../src/gateway/auth/keys.js';
import { type GatewayConfig, gatewaySchema } from '../src/gateway/config.js';
import { GATEWAY_MIGRATIONS } from '../src/gateway/migrations.js';
import { QuotaService, rateLimitHeaders } from '../src/gateway/quota/service.js';
import { UsageRecorder } from '../src/gateway/usage/recorder.js';
import {
  benchGateway,
  CHAT_MOCK,
  createBenchKey,
  freePort,
  kapokBin,
  NODE_PROXY,
  spawnProcess,
  stats,
  stop,
  tempDir,
  waitFor200,
  writeBenchConfig,
} from './lib.js';

const ROUNDS = Number(process.env.KAPOK_BENCH_PARTS_ROUNDS ?? 7);
const CALLS = Number(process.env.KAPOK_BENCH_PARTS_CALLS ?? 50_000);
const REQUESTS = Number(process.env.KAPOK_BENCH_PARTS_REQUESTS ?? 3000);
const CONNECTIONS = 64;
const ONLY = process.env.KAPOK_BENCH_PARTS_ONLY;
for (const [name, v] of [
  ['KAPOK_BENCH_PARTS_ROUNDS', ROUNDS],
  ['KAPOK_BENCH_PARTS_CALLS', CALLS],
  ['KAPOK_BENCH_PARTS_REQUESTS', REQUESTS],
] as const)
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number of at least 1`);
if (ONLY !== undefined && ONLY !== 'parts' && ONLY !== 'processes')
  throw new Error('KAPOK_BENCH_PARTS_ONLY must be parts or processes');

function push(into: Record<string, number[]>, k: string, v: number) {
  const xs = into[k] ?? [];
  xs.push(v);
  into[k] = xs;
}

const silent = { warn() {}, info() {}, error() {}, debug() {} } as unknown as Logger;

async function parts() {
  const tmp = tempDir();
  const store = await createSqliteStore({ file: join(tmp.dir, 'kapok.db') });
  await store.migrate(GATEWAY_MIGRATIONS);
  const cfg: GatewayConfig = gatewaySchema.parse({
    ...benchGateway(1, 'bench-admin-token-0123456789'),
    providers: [{ name: 'mock', type: 'openai', baseUrl: 'http://127.0.0.1:1/v1' }],
  });
  const keys = new KeyService({ store: new KeyStore(store), knownModels: new Set(), cacheMs: 60_000 });
  const { key } = await keys.create({ name: 'bench' });
  const auth = new Authenticator(cfg, keys);
  const authorization = `Bearer ${key}`;
  const principal = await auth.authenticate(authorization, '127.0.0.1');
  const kv = await createMemoryKV();
  const quota = new QuotaService(kv, { failOpen: false, logger: silent });
  // gateway.usage's default batch: 500 records a transaction, written as INSERTs of 64 rows.
  const usage = new UsageRecorder({
    store,
    logger: silent,
    flushIntervalMs: 60_000,
    batchSize: cfg.usage.batchSize,
    maxQueue: 1e6,
  });
  const tracing = await createTracing({ serviceName: 'bench', otlpEndpoint: null, sampleRatio: 1 });
  const upstreamHeaders = { 'content-type': 'application/json' };

  const work: Record<string, (n: number) => Promise<unknown>> = {
    auth: async (n) => {
      for (let i = 0; i < n; i++) await auth.authenticate(authorization, '127.0.0.1');
    },
    quota: async (n) => {
      for (let i = 0; i < n; i++) {
        const a = await quota.admit(principal, 25); // prompt + max_tokens of the bench's request
        rateLimitHeaders(a.result, principal);
        await quota.settle(principal, a, 10); // the mock's usage: 9 + 1 tokens
      }
    },
    usage: async (n) => {
      for (let i = 0; i < n; i++)
        usage.record({
          ts: Date.now(),
          subject: principal.subject,
          model: 'qwen',
          target: 'mock/m',
          promptTokens: 9,
          completionTokens: 1,
          latencyMs: 2,
          status: 200,
          stream: false,
        });
      await usage.flush();
    },
    spans: async (n) => {
      let x = 0;
      for (let i = 0; i < n; i++) {
        const s = tracing.tracer.startSpan(
          'POST /v1/chat/completions',
          {
            kind: SpanKind.SERVER,
            attributes: {
              'http.request.method': 'POST',
              'http.route': '/v1/chat/completions',
              'url.path': '/v1/chat/completions',
            },
          },
          ROOT_CONTEXT,
        );
        const c = tracing.tracer.startSpan(
          'gateway upstream mock/m',
          {
            kind: SpanKind.CLIENT,
            attributes: { 'gen_ai.request.model': 'm', 'kapok.gateway.target': 'mock/m' },
          },
          trace.setSpan(ROOT_CONTEXT, s),
        );
        x += tracing.spanHeaders(upstreamHeaders, c).traceparent?.length ?? 0;
        c.setAttribute('http.response.status_code', 200);
        c.end();
        s.end();
      }
      return x;
    },
    requestId: async (n) => {
      let x = 0;
      for (let i = 0; i < n; i++) x += randomUUID().length;
      return x;
    },
  };
  const us: Record<string, number[]> = {};
  for (const f of Object.values(work)) await f(Math.min(CALLS, 5000)); // warm-up: JIT, caches
  for (let r = 0; r < ROUNDS; r++)
    for (const [name, f] of Object.entries(work)) {
      const t0 = process.cpuUsage();
      await f(CALLS);
      const c = process.cpuUsage(t0);
      push(us, name, (c.user + c.system) / CALLS);
    }
  await usage.stop();
  await kv.close();
  await store.close();
  await tracing.shutdown();
  tmp.remove();
  const out = Object.fromEntries(Object.entries(us).map(([k, v]) => [k, stats(v)]));
  const sum = Math.round(Object.values(out).reduce((s, x) => s + x.median, 0) * 10) / 10;
  return { cpuUsPerRequest: out, sumOfMedians: sum };
}

/** The Node floor (bench/lib.ts NODE_PROXY) as one Fastify route: what the framework itself costs. */
const FASTIFY_FLOOR = `
const { Pool } = require(process.env.UNDICI);
const pool = new Pool(process.env.UPSTREAM, { connections: 256, keepAliveTimeout: 30000 });
const headers = { 'content-type': 'application/json' };
const app = require(process.env.FASTIFY)({ logger: false });
app.post('/v1/chat/completions', async (req, reply) => {
  const up = await pool.request({ path: req.url, method: 'POST', headers, body: JSON.stringify(req.body) });
  const text = await up.body.text();
  return reply.code(up.statusCode).type('application/json').send(text);
});
app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });`;

const BODY = JSON.stringify({
  model: 'qwen',
  messages: [{ role: 'user', content: 'Say ok.' }],
  max_tokens: 16,
});

/** utime + stime of a process in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function closedLoop(pool: Pool, headers: Record<string, string>, n: number): Promise<number> {
  let left = n;
  let bad = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (left-- > 0) {
        const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers, body: BODY });
        await res.body.text();
        if (res.statusCode !== 200) bad++;
      }
    }),
  );
  return bad;
}

async function processes() {
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  const require = createRequire(import.meta.url);
  const mockPort = await freePort();
  const mock = spawnProcess(['taskset', '-c', '1', process.execPath, '-e', CHAT_MOCK], {
    PORT: String(mockPort),
  });
  const upstream = `http://127.0.0.1:${mockPort}`;
  const floorEnv = { UPSTREAM: upstream, UNDICI: require.resolve('undici') };
  const nodePort = await freePort();
  const node = spawnProcess(['taskset', '-c', '0', process.execPath, '-e', NODE_PROXY], {
    ...floorEnv,
    PORT: String(nodePort),
  });
  const fastifyPort = await freePort();
  const fastify = spawnProcess(['taskset', '-c', '0', process.execPath, '-e', FASTIFY_FLOOR], {
    ...floorEnv,
    PORT: String(fastifyPort),
    FASTIFY: require.resolve('fastify'),
  });
  const admin = 'bench-admin-token-0123456789';
  const kapokPort = await freePort();
  const config = writeBenchConfig(tmp.dir, kapokPort, { gateway: benchGateway(mockPort, admin) });
  const kapok = spawn('taskset', ['-c', '0', process.execPath, kapokBin, 'up', '--config', config], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const children = [mock, node, fastify, kapok];
  try {
    const kapokOrigin = `http://127.0.0.1:${kapokPort}`;
    await waitFor200(`${kapokOrigin}/healthz`, performance.now(), kapok);
    const key = await createBenchKey(kapokOrigin, admin, 'gateway-parts');
    const json = { 'content-type': 'application/json' };
    const targets = [
      { name: 'nodeFloor', pid: node.pid as number, origin: `http://127.0.0.1:${nodePort}`, headers: json },
      {
        name: 'fastifyFloor',
        pid: fastify.pid as number,
        origin: `http://127.0.0.1:${fastifyPort}`,
        headers: json,
      },
      {
        name: 'kapok',
        pid: kapok.pid as number,
        origin: kapokOrigin,
        headers: { ...json, authorization: `Bearer ${key}` },
      },
    ];
    const pools = targets.map((t) => new Pool(t.origin, { connections: CONNECTIONS }));
    // The floors have no health route: their first answered request is the sign they are up.
    for (const [i, t] of targets.entries()) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          if ((await closedLoop(pools[i] as Pool, t.headers, 1)) === 0) break;
        } catch {}
        if (Date.now() > deadline) throw new Error(`gateway-parts: ${t.name} did not answer within 30 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // Warm-up: the JIT's first seconds (see docs/operations.md, "CPU and NUMA").
    for (const [i, t] of targets.entries()) await closedLoop(pools[i] as Pool, t.headers, 15_000);
    const us: Record<string, number[]> = {};
    const rps: Record<string, number[]> = {};
    let errors = 0;
    for (let r = 0; r < ROUNDS; r++)
      for (const [i, t] of r % 2 ? [...targets.entries()].reverse() : [...targets.entries()]) {
        const c0 = cpuMs(t.pid);
        const t0 = performance.now();
        errors += await closedLoop(pools[i] as Pool, t.headers, REQUESTS);
        const ms = performance.now() - t0;
        const ticks = cpuMs(t.pid) - c0;
        // /proc counts CPU in 10 ms ticks: a batch that read none gives no figure (nor a ratio).
        if (ticks === 0)
          throw new Error(
            `gateway-parts: ${t.name} used under one 10 ms clock tick for ${REQUESTS} requests: raise KAPOK_BENCH_PARTS_REQUESTS`,
          );
        push(us, t.name, (ticks * 1000) / REQUESTS);
        push(rps, t.name, (REQUESTS * 1000) / ms);
      }
    await Promise.all(pools.map((p) => p.close()));
    const cpu = Object.fromEntries(Object.entries(us).map(([k, v]) => [k, stats(v)]));
    const ratio = (a: string, b: string) =>
      stats((us[a] as number[]).map((x, i) => x / ((us[b] as number[])[i] as number)));
    return {
      pinning: 'Kapok and both floors on core 0; the mock upstream and this generator on core 1',
      connections: CONNECTIONS,
      requestsPerBatch: REQUESTS,
      non2xx: errors,
      cpuUsPerRequest: cpu,
      requestsPerSec: Object.fromEntries(Object.entries(rps).map(([k, v]) => [k, stats(v)])),
      kapokOverNodeFloorCpu: ratio('kapok', 'nodeFloor'),
      fastifyFloorOverNodeFloorCpu: ratio('fastifyFloor', 'nodeFloor'),
    };
  } finally {
    for (const c of children) await stop(c);
    tmp.remove();
  }
}

const result: Record<string, unknown> = { rounds: ROUNDS };
if (ONLY !== 'processes') result.parts = await parts();
if (ONLY !== 'parts') result.processes = await processes();
console.log(JSON.stringify(result, null, 1));
