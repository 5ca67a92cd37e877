/**
 * Instructions Kapok executes per gateway request, counted by valgrind's callgrind: a figure a busy
 * shared machine does not bend (wall-clock and even CPU time per request inflate under load). Kapok
 * (the gateway bench's setup: API key auth + memory quotas + routing + usage records into SQLite,
 * a fast mock upstream) starts under callgrind with instrumentation off; after a warm-up it is
 * switched on (callgrind_control -i on) for exactly N closed-loop requests on C connections, then
 * off and dumped. Not part of `npm run bench`; run it alone (valgrind needed; minutes per variant):
 *
 *   npm run build && node --import tsx bench/gateway-instructions.ts
 *   KAPOK_BENCH_INSTR_VARIANTS='base=/work/base/dist/bundle/main.js;new=dist/bundle/main.js' node --import tsx bench/gateway-instructions.ts
 *   KAPOK_BENCH_INSTR_VARIANTS='plain=dist/bundle/main.js;semi4=dist/bundle/main.js --max-semi-space-size=4' ...
 *   KAPOK_BENCH_INSTR_REQUESTS=2000 KAPOK_BENCH_INSTR_WARMUP=3000 KAPOK_BENCH_INSTR_CONNECTIONS=16 KAPOK_BENCH_INSTR_ROUNDS=2
 *
 * Baseline: the other variants of the same run. The count includes GC, JIT compilation, the SQLite
 * usage writes and the worker threads' work in the window, and excludes the kernel. With a window of
 * 400 requests after 800 of warm-up, the same build measured 2.2 M and 3.3 M instructions per
 * request in two runs (compilation and collections land in the window or not): take several rounds
 * and thousands of requests before reading a difference of a few percent.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { createBenchKey, freePort, root, stop, tempDir, waitFor200, writeBenchConfig } from './lib.js';

const ADMIN = 'bench-admin-token-0123456789';
const requests = Number(process.env.KAPOK_BENCH_INSTR_REQUESTS ?? 2000);
const warmup = Number(process.env.KAPOK_BENCH_INSTR_WARMUP ?? 3000);
const connections = Number(process.env.KAPOK_BENCH_INSTR_CONNECTIONS ?? 16);
const rounds = Number(process.env.KAPOK_BENCH_INSTR_ROUNDS ?? 1);
const variants = (process.env.KAPOK_BENCH_INSTR_VARIANTS ?? `new=${join(root, 'dist/bundle/main.js')}`)
  .split(';')
  .map((v) => {
    const at = v.indexOf('=');
    const name = v.slice(0, at);
    const rest = v.slice(at + 1); // flags carry '=' too
    const [bin, ...args] = rest.trim().split(/\s+/) as [string, ...string[]];
    return { name, bin, args };
  });

// Kept-alive sockets stay open for minutes: Kapok under valgrind is too slow to see a 5 s idle close
// before reusing the socket (a reset, counted as a failed attempt).
const MOCK = `require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => {
  const b = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
  res.end(b); }); }).listen(Number(process.env.PORT), '127.0.0.1').keepAliveTimeout = 600000;`;
const BODY = JSON.stringify({
  model: 'qwen',
  messages: [{ role: 'user', content: 'Say ok.' }],
  max_tokens: 16,
});

const statuses: Record<number, number> = {};

async function load(pool: Pool, headers: Record<string, string>, n: number): Promise<number> {
  let left = n;
  let bad = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (left > 0) {
        left--;
        const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers, body: BODY });
        const text = await res.body.text();
        if (res.statusCode !== 200 && bad === 0) process.stderr.write(`${text.slice(0, 300)}\n`);
        if (res.statusCode !== 200) {
          bad++;
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (bad === 1) process.stderr.write(`first non-200: ${res.statusCode}\n`);
        }
      }
    }),
  );
  return bad;
}

/**
 * Sum of the `totals:` Ir of every callgrind dump in `dir` (one per dump). With instrumentation off
 * at start a dump's `summary:` line reads 0; `totals:` holds the count.
 */
function instructions(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir).filter((x) => x.startsWith('cg.'))) {
    const m = /^totals: (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    if (m) total += Number(m[1]);
  }
  return total;
}

async function runVariant(v: (typeof variants)[number], mockPort: number) {
  const tmp = tempDir();
  const port = await freePort();
  const configFile = writeBenchConfig(tmp.dir, port, {
    gateway: {
      enabled: true,
      // Valgrind slows Kapok ~20x: generous upstream timeouts, so none fires.
      providers: [
        {
          name: 'mock',
          type: 'openai',
          baseUrl: `http://127.0.0.1:${mockPort}/v1`,
          connectTimeoutMs: 120_000,
          timeoutMs: 600_000,
        },
      ],
      models: [{ name: 'qwen', targets: [{ provider: 'mock', model: 'm' }] }],
      auth: { adminToken: ADMIN },
      limits: { default: { rpm: 1_000_000_000, tpm: 1_000_000_000 } },
    },
  });
  const kapok = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      '--smc-check=all-non-file', // V8 writes the code it runs
      `--callgrind-out-file=${join(tmp.dir, 'cg.%p')}`,
      process.execPath,
      ...v.args,
      v.bin,
      'up',
      '--config',
      configFile,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  try {
    await waitFor200(`http://127.0.0.1:${port}/healthz`, performance.now(), kapok, 300_000);
    const key = await createBenchKey(`http://127.0.0.1:${port}`, ADMIN, 'gateway-instructions');
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections });
    const warmBad = await load(pool, headers, warmup);
    const pid = String(kapok.pid);
    execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
    const bad = await load(pool, headers, requests);
    execFileSync('callgrind_control', ['-i', 'off', pid], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
    await pool.close();
    await stop(kapok);
    const ir = instructions(tmp.dir);
    if (!ir) process.stderr.write(`no instructions counted: ${readdirSync(tmp.dir).join(' ')}\n`);
    return { irPerRequest: Math.round(ir / requests), requests, non2xx: bad + warmBad, statuses };
  } finally {
    if (kapok.exitCode === null) await stop(kapok);
    tmp.remove();
  }
}

const mockPort = await freePort();
const mock = spawn(process.execPath, ['-e', MOCK], {
  env: { ...process.env, PORT: String(mockPort) },
  stdio: 'ignore',
});
try {
  for (let r = 0; r < rounds; r++)
    for (const v of variants)
      console.log(
        JSON.stringify({ round: r, variant: v.name, args: v.args, ...(await runVariant(v, mockPort)) }),
      );
} finally {
  await stop(mock);
}
