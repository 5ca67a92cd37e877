/**
 * The gateway's RSS under load, alone and quicker than `npm run bench -- gateway` (whose rate sweep
 * comes first): Kapok with the gateway bench's setup (auth with an API key + quotas + routing +
 * usage records into the embedded SQLite store, a fast mock upstream) takes N closed-loop requests
 * on 64 connections, and its RSS is sampled every 10,000. Not part of `npm run bench`; run it alone:
 *
 *   npm run build && node --import tsx bench/gateway-rss.ts [requests=100000]
 *   KAPOK_BENCH_KAPOK_BIN=/other/tree/dist/bundle/main.js node --import tsx bench/gateway-rss.ts
 *   KAPOK_BENCH_NODE_ARGS='--max-semi-space-size=4' node --import tsx bench/gateway-rss.ts   # V8 flags for Kapok
 *
 * Baseline: none (a memory figure of one process); compare builds by alternating them on one machine.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import {
  benchGateway,
  CAPABILITIES_OFF_CONFIG,
  createBenchKey,
  freePort,
  kapokBin,
  kapokNodeArgs,
  rssBytes,
  spawnProcess,
  stop,
  tempDir,
  waitFor200,
} from './lib.js';

const ADMIN = 'bench-admin-token-0123456789';
const total = Number(process.argv[2] ?? 100_000);
const nodeArgs = kapokNodeArgs();
const tmp = tempDir();
const mockPort = await freePort();
const port = await freePort();
const MOCK = `require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => {
  const b = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
  res.end(b); }); }).listen(${mockPort}, '127.0.0.1');`;
const mock = spawnProcess([process.execPath, '-e', MOCK], {});
const configFile = join(tmp.dir, 'kapok.yaml');
writeFileSync(
  configFile,
  stringify({
    dataDir: tmp.dir,
    log: { level: 'warn', requests: false },
    http: { host: '127.0.0.1', port },
    ...CAPABILITIES_OFF_CONFIG,
    gateway: benchGateway(mockPort, ADMIN),
  }),
);
const kapok = spawn(process.execPath, [...nodeArgs, kapokBin, 'up', '--config', configFile], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
const mb = (b: number) => Math.round(b / 2 ** 20);
try {
  // A busy shared machine can take longer than the usual 15 s to start it.
  await waitFor200(`http://127.0.0.1:${port}/healthz`, performance.now(), kapok, 90_000);
  const idle = rssBytes(kapok.pid as number);
  const key = await createBenchKey(`http://127.0.0.1:${port}`, ADMIN, 'gateway-rss');
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64 });
  const body = JSON.stringify({
    model: 'qwen',
    messages: [{ role: 'user', content: 'Say ok.' }],
    max_tokens: 16,
  });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  let sent = 0;
  let done = 0;
  let non2xx = 0;
  const rssEvery10kMB: number[] = [];
  const t0 = performance.now();
  const loop = async () => {
    while (sent < total) {
      sent++;
      const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body });
      await r.body.text();
      if (r.statusCode !== 200) non2xx++;
      if (++done % 10_000 === 0) rssEvery10kMB.push(mb(rssBytes(kapok.pid as number)));
    }
  };
  await Promise.all(Array.from({ length: 64 }, loop));
  await pool.close();
  console.log(
    JSON.stringify({
      kapokBin,
      nodeArgs,
      requests: total,
      idleMB: mb(idle),
      rssEvery10kMB,
      non2xx,
      rps: Math.round(total / ((performance.now() - t0) / 1000)),
    }),
  );
} finally {
  await stop(kapok);
  await stop(mock);
  tmp.remove();
}
