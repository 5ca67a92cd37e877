import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { configSchema } from '../src/config.js';
import { Router } from '../src/gateway/routing/router.js';
import { loadTokenCounter } from '../src/gateway/routing/tokens.js';
import { createUpstream } from '../src/gateway/upstream/pool.js';
import { freePort, kapokBin, rssBytes, spawnProcess, stop, tempDir, waitFor200 } from './lib.js';

/**
 * LLM gateway overhead: the same open-loop load (fixed request rate, latency measured from each
 * request's scheduled time, so a stall is not hidden) sent to a fast mock upstream directly and
 * through Kapok with auth (API key) + quotas (memory KV) + routing. Kapok is pinned to core 0; the
 * mock and this load generator share core 1. Added latency = through Kapok − direct, same rate.
 */
const ADMIN = 'bench-admin-token-0123456789';

/** A mock OpenAI upstream: fixed chat answer, or 20 SSE chunks + usage + [DONE]. */
const MOCK = `
const http = require('node:http');
const body = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } });
const chunk = (c) => 'data: ' + JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: c }, finish_reason: null }] }) + '\\n\\n';
const stream = Array.from({ length: 20 }, (_, i) => chunk('w' + i)).join('') +
  'data: ' + JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 9, completion_tokens: 20, total_tokens: 29 } }) + '\\n\\ndata: [DONE]\\n\\n';
http.createServer((req, res) => {
  let n = '';
  req.on('data', (d) => { n += d; });
  req.on('end', () => {
    if (n.includes('"stream":true')) { res.writeHead(200, { 'content-type': 'text/event-stream' }); res.end(stream); return; }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

const REQUEST = JSON.stringify({
  model: 'qwen',
  messages: [{ role: 'user', content: 'Say ok.' }],
  max_tokens: 16,
});

interface Target {
  origin: string;
  path: string;
  headers: Record<string, string>;
}

export async function gateway() {
  const seconds = Number(process.env.KAPOK_BENCH_SECONDS ?? 5);
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  const mockPort = await freePort();
  const mock = spawnProcess(['taskset', '-c', '1', process.execPath, '-e', MOCK], { PORT: String(mockPort) });
  const kapokPort = await freePort();
  const configFile = join(tmp.dir, 'kapok.yaml');
  writeFileSync(
    configFile,
    stringify({
      dataDir: tmp.dir,
      log: { level: 'warn', requests: false },
      http: { host: '127.0.0.1', port: kapokPort },
      gateway: {
        enabled: true,
        providers: [{ name: 'mock', type: 'openai', baseUrl: `http://127.0.0.1:${mockPort}/v1` }],
        models: [{ name: 'qwen', targets: [{ provider: 'mock', model: 'm' }] }],
        auth: { adminToken: ADMIN },
        limits: { default: { rpm: 1_000_000_000, tpm: 1_000_000_000 } },
      },
    }),
  );
  const kapok = spawnProcess(
    ['taskset', '-c', '0', process.execPath, kapokBin, 'up', '--config', configFile],
    {},
  );
  try {
    await waitFor200(`http://127.0.0.1:${kapokPort}/healthz`, performance.now(), kapok);
    const res = await fetch(`http://127.0.0.1:${kapokPort}/api/gateway/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench' }),
    });
    const { key } = (await res.json()) as { key: string };
    const direct: Target = {
      origin: `http://127.0.0.1:${mockPort}`,
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
    };
    const viaKapok: Target = {
      origin: `http://127.0.0.1:${kapokPort}`,
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    };

    await closedLoop(viaKapok, 2, 32); // warm-up: JIT, pools, tokenizer caches
    await closedLoop(direct, 1, 32);
    const rssWarm = rssBytes(kapok.pid as number);

    const atRate: Record<string, unknown> = {};
    for (const rate of [1000, 5000]) {
      const d = await openLoop(direct, rate, seconds);
      const k = await openLoop(viaKapok, rate, seconds);
      atRate[String(rate)] = summary(d, k);
    }

    // Highest rate whose added p99 stays within 5 ms (and that the gateway actually keeps up with).
    let maxRate = 0;
    const steps: unknown[] = [];
    for (const rate of [2000, 4000, 6000, 8000, 10_000, 12_000]) {
      const d = await openLoop(direct, rate, seconds);
      const k = await openLoop(viaKapok, rate, seconds);
      const s = summary(d, k);
      steps.push({ rate, ...s });
      if (s.addedP99Ms > 5 || k.achieved < rate * 0.95) break;
      maxRate = rate;
    }

    const throughput = await closedLoop(viaKapok, seconds, 64);
    const directThroughput = await closedLoop(direct, seconds, 64);
    const ttft = await streaming(direct, viaKapok, 300);

    // RSS after 100,000 requests in all (those above included).
    let sent = requestsSent;
    while (sent < 100_000) sent += (await closedLoop(viaKapok, 2, 64)).requests;
    const rssAfter = rssBytes(kapok.pid as number);

    const decision = await routingDecision();
    const at1k = atRate['1000'] as ReturnType<typeof summary>;
    return {
      setup: {
        seconds,
        kapok: 'taskset -c 0, auth (API key) + quotas (memory KV) + routing + usage records',
        mockAndLoadGenerator: 'taskset -c 1 (undici Pool, open loop, latency from scheduled send time)',
      },
      atRate,
      maxRateWithAddedP99Within5ms: maxRate,
      steps,
      closedLoop64: {
        kapokRps: throughput.rps,
        directRps: directThroughput.rps,
        kapokP99Ms: throughput.p99Ms,
      },
      streaming: ttft,
      rss: { afterWarmupMB: mb(rssWarm), after100kRequestsMB: mb(rssAfter), requests: sent },
      routingDecision2000Tokens: decision,
      targets: { addedP50MsAt1000: 0.5, addedP99MsAt1000: 2, rps: 8000, decisionMs: 1 },
      met: {
        addedP50At1000: at1k.addedP50Ms <= 0.5,
        addedP99At1000: at1k.addedP99Ms <= 2,
        rps: throughput.rps >= 8000,
        decision: decision.meanMs < 1,
      },
    };
  } finally {
    await stop(kapok);
    await stop(mock);
    tmp.remove();
  }
}

let requestsSent = 0;
const mb = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
const r3 = (n: number) => Math.round(n * 1000) / 1000;

function summary(d: Load, k: Load) {
  return {
    direct: { p50Ms: d.p50Ms, p99Ms: d.p99Ms, achieved: d.achieved },
    kapok: { p50Ms: k.p50Ms, p99Ms: k.p99Ms, achieved: k.achieved, errors: k.errors },
    addedP50Ms: r3(k.p50Ms - d.p50Ms),
    addedP99Ms: r3(k.p99Ms - d.p99Ms),
  };
}

interface Load {
  p50Ms: number;
  p99Ms: number;
  achieved: number;
  errors: number;
}

/** Sends `rate` requests/s for `seconds`; latency counted from each request's scheduled time. */
async function openLoop(t: Target, rate: number, seconds: number): Promise<Load> {
  const pool = new Pool(t.origin, { connections: 256, pipelining: 1 });
  const lat: number[] = [];
  let errors = 0;
  const total = rate * seconds;
  const start = performance.now();
  let scheduled = 0;
  const inflight = new Set<Promise<void>>();
  while (scheduled < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; scheduled < due; scheduled++) {
      const at = start + (scheduled * 1000) / rate;
      const p = pool
        .request({ path: t.path, method: 'POST', headers: t.headers, body: REQUEST })
        .then(async (res) => {
          await res.body.text();
          if (res.statusCode !== 200) errors++;
          lat.push(performance.now() - at);
        })
        .catch(() => {
          errors++;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  await pool.close();
  requestsSent += total;
  lat.sort((a, b) => a - b);
  return {
    p50Ms: r3(pct(lat, 0.5)),
    p99Ms: r3(pct(lat, 0.99)),
    achieved: Math.round(lat.length / elapsed),
    errors,
  };
}

async function closedLoop(t: Target, seconds: number, connections: number) {
  const pool = new Pool(t.origin, { connections, pipelining: 1 });
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const res = await pool.request({ path: t.path, method: 'POST', headers: t.headers, body: REQUEST });
        await res.body.text();
        lat.push(performance.now() - t0);
      }
    }),
  );
  await pool.close();
  requestsSent += lat.length;
  lat.sort((a, b) => a - b);
  return { rps: Math.round(lat.length / seconds), p99Ms: r3(pct(lat, 0.99)), requests: lat.length };
}

/** Time to the first body byte of a streamed answer, one request at a time. */
async function streaming(direct: Target, viaKapok: Target, n: number) {
  const body = JSON.stringify({
    model: 'qwen',
    messages: [{ role: 'user', content: 'Say ok.' }],
    stream: true,
  });
  const run = async (t: Target) => {
    const pool = new Pool(t.origin, { connections: 1 });
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await pool.request({ path: t.path, method: 'POST', headers: t.headers, body });
      let first = 0;
      for await (const _ of res.body) if (!first) first = performance.now() - t0;
      xs.push(first);
    }
    await pool.close();
    requestsSent += n;
    xs.sort((a, b) => a - b);
    return { p50Ms: r3(pct(xs, 0.5)), p99Ms: r3(pct(xs, 0.99)) };
  };
  const d = await run(direct);
  const k = await run(viaKapok);
  return {
    direct: d,
    kapok: k,
    addedTtftP50Ms: r3(k.p50Ms - d.p50Ms),
    addedTtftP99Ms: r3(k.p99Ms - d.p99Ms),
  };
}

/** Token count + degradation + attempt plan for ~2,000-token prompts, in-process. */
async function routingDecision() {
  const cfg = configSchema.parse({
    gateway: {
      providers: [{ name: 'a', type: 'openai', baseUrl: 'http://127.0.0.1:9/v1' }],
      models: [
        {
          name: 'qwen',
          targets: [{ provider: 'a', model: 'x' }],
          degrade: { aboveTokens: 512, to: { provider: 'a', model: 'awq' } },
        },
      ],
    },
  }).gateway;
  const upstreams = new Map([['a', createUpstream(cfg.providers[0] as never, 0)]]);
  const router = new Router({
    config: cfg,
    upstreams,
    tokenizers: new Map([['o200k', await loadTokenCounter('o200k')]]),
  });
  const words = [
    'traffic',
    'signal',
    'phase',
    '广州',
    'vehicle',
    'latency',
    'quota',
    '木棉',
    'route',
    'camera',
    'edge',
  ];
  const prompts = Array.from({ length: 200 }, (_, j) => {
    let s = '';
    for (let i = 0; i < 880; i++) s += `${words[(i * 7 + j) % words.length]}${(i * 31 + j) % 97} `;
    return { model: 'qwen', messages: [{ role: 'user', content: s }] };
  });
  const route = router.routes.get('qwen') as NonNullable<ReturnType<typeof router.routes.get>>;
  const tokens = route.tokens.chat(prompts[0] as never);
  for (const p of prompts.slice(0, 20)) router.plan(route, route.tokens.chat(p as never)); // warm-up
  const xs: number[] = [];
  for (const p of prompts) {
    const t0 = performance.now();
    router.plan(route, route.tokens.chat(p as never));
    xs.push(performance.now() - t0);
  }
  await Promise.all([...upstreams.values()].map((u) => u.pool.close()));
  xs.sort((a, b) => a - b);
  return {
    promptTokens: tokens,
    meanMs: r3(xs.reduce((a, b) => a + b, 0) / xs.length),
    p99Ms: r3(pct(xs, 0.99)),
  };
}
