import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { createEtcdClient, type EtcdClient } from '../src/adapters/etcd/client.js';
import { buildLayer } from '../src/adapters/etcd/layer.js';
import type { RunningApp } from '../src/app.js';
import { startApp } from '../src/app.js';
import { loadKapokConfig } from '../src/config.js';
import { CAPABILITIES_OFF_CONFIG, freePort, tempDir } from './lib.js';

/**
 * `npm run bench -- control`: etcd put → applied in a running Kapok (control.source: etcd), p50/p99
 * over KAPOK_BENCH_CONTROL_CHANGES (default 1000) changes of log.level, each waited for before the
 * next. Baseline, same run, same etcd: a bare watch on the same prefix, put → event delivered. The
 * difference is Kapok's part: rebuild the layer, compose and validate the whole config, plan, apply,
 * publish control.config.applied (observed here on the in-process event bus). Runs from source.
 */
export async function control(): Promise<unknown> {
  const changes = Number(process.env.KAPOK_BENCH_CONTROL_CHANGES ?? 1000);
  const tmp = tempDir();
  const port = await freePort();
  const peer = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  const etcd: ChildProcess = spawn(
    'etcd',
    [
      '--data-dir',
      join(tmp.dir, 'etcd'),
      '--listen-client-urls',
      `http://${endpoint}`,
      '--advertise-client-urls',
      `http://${endpoint}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
      '--log-level',
      'error',
      '--logger',
      'zap',
    ],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://${endpoint}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 400) throw new Error('etcd did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
    const client = createEtcdClient({ endpoints: [endpoint], callTimeoutMs: 60_000 });
    const prefix = '/kapok/bench/';
    // The first differs from the running level (info): every put is a change.
    const levels = ['warn', 'info'];

    // Baseline: a bare watch, put → event.
    const bare: number[] = [];
    let wake: (() => void) | undefined;
    const w = client.watch(prefix, (await client.revision()) + 1, {
      onEvents: () => wake?.(),
      onEnd: () => {},
    });
    for (let i = 0; i < changes; i++) {
      const seen = new Promise<void>((r) => {
        wake = r;
      });
      const t0 = performance.now();
      await client.put(`${prefix}raw`, String(i));
      await seen;
      bare.push(performance.now() - t0);
    }
    w.cancel();
    await client.delete(`${prefix}raw`);

    const file = join(tmp.dir, 'kapok.yaml');
    writeFileSync(
      file,
      stringify({
        ...CAPABILITIES_OFF_CONFIG,
        http: { host: '127.0.0.1', port: 0 },
        dataDir: join(tmp.dir, 'data'),
        control: { enabled: true, source: 'etcd', etcd: { endpoints: [endpoint], prefix } },
      }),
    );
    const app = await startApp(loadKapokConfig({ file }), { logDestination: { write: () => true } });
    const applied: number[] = [];
    let done: (() => void) | undefined;
    const off = app.events.subscribe(['control.config.applied'], () => done?.());
    for (let i = 0; i < changes; i++) {
      const seen = new Promise<void>((r) => {
        done = r;
      });
      const t0 = performance.now();
      await client.put(`${prefix}log`, `{ level: ${levels[i % 2]} }`);
      await seen;
      applied.push(performance.now() - t0);
    }
    off();
    const status = (await app.server.inject({ url: '/api/control/status' })).json();
    process.stderr.write(`  put → applied: ${changes} changes done\n`);
    const churned = await churn(client, prefix, app, join(tmp.dir, 'data'));
    process.stderr.write(`  churn done: ${JSON.stringify(churned)}\n`);
    await app.stop();
    const gateway = await gatewayUnderChanges(client, endpoint, tmp.dir);
    client.close();
    const q = (xs: number[], p: number) => {
      const s = [...xs].sort((a, b) => a - b);
      return Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 100) / 100;
    };
    return {
      changes,
      putToApplied: { p50Ms: q(applied, 0.5), p99Ms: q(applied, 0.99), maxMs: q(applied, 1) },
      baselinePutToWatchEvent: { p50Ms: q(bare, 0.5), p99Ms: q(bare, 0.99), maxMs: q(bare, 1) },
      appliedCount: status.applied,
      rejected: status.rejected,
      churn: churned,
      gateway,
      verdict: {
        p99Under50Ms: q(applied, 0.99) <= 50,
        allApplied: status.applied === changes && status.rejected === 0,
        churnNoMissedRevision: churned.noMissedRevision,
        gatewayRatioAtLeast095: gateway.ratio >= 0.95,
      },
    };
  } finally {
    etcd.kill('SIGKILL');
    tmp.remove();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * KAPOK_BENCH_CONTROL_KEYS (1000) keys changing at KAPOK_BENCH_CONTROL_RATE (100/s) for
 * KAPOK_BENCH_CONTROL_CHURN_S seconds (60; the 5 minutes shortened for the shared box): the
 * keys are control.labels entries (any name is valid there; they take a restart, so the check is on
 * what was accepted). After the last put, the revision Kapok accepted must be the last put's and the
 * layer it cached as last good must equal what etcd holds: no missed revision.
 */
async function churn(client: EtcdClient, prefix: string, app: RunningApp, dataDir: string) {
  const keys = Number(process.env.KAPOK_BENCH_CONTROL_KEYS ?? 1000);
  const rate = Number(process.env.KAPOK_BENCH_CONTROL_RATE ?? 100);
  const seconds = Number(process.env.KAPOK_BENCH_CONTROL_CHURN_S ?? 60);
  const total = rate * seconds;
  const t0 = performance.now();
  // Open loop: each put leaves on its schedule, not after the previous answer (the Kapok in this
  // process composes the whole configuration per change and would otherwise slow the sender).
  const puts: Promise<number>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    puts.push(client.put(`${prefix}control/labels/k${i % keys}`, `v${i}`));
  }
  const sentS = (performance.now() - t0) / 1000;
  const last = Math.max(...(await Promise.all(puts)));
  process.stderr.write(`  churn: ${total} puts sent in ${sentS.toFixed(1)} s\n`);
  const status = async () => (await app.server.inject({ url: '/api/control/status' })).json();
  const end = Date.now() + 30_000;
  let s = await status();
  while ((s.revisions?.[1] ?? 0) < last && Date.now() < end) {
    await sleep(50);
    s = await status();
  }
  const cached = JSON.parse(readFileSync(join(dataDir, 'control', 'etcd-last-good.json'), 'utf8'));
  const { kvs } = await client.list(prefix);
  const held = buildLayer(
    prefix,
    kvs.map((kv) => [kv.key, kv.value.toString('utf8')] as [string, string]),
    {},
  );
  const same = JSON.stringify(cached.tree) === JSON.stringify(held);
  return {
    keys,
    puts: total,
    seconds,
    achievedRatePerS: Math.round(total / sentS),
    lastPutRevision: last,
    acceptedRevision: s.revisions?.[1],
    cachedRevision: cached.revision,
    reloads: s.applied,
    rejected: s.rejected,
    resyncs: s.sources?.[1]?.resyncs,
    noMissedRevision: s.revisions?.[1] === last && cached.revision === last && same && s.rejected === 0,
  };
}

/**
 * Gateway throughput (8 clients, closed loop, a local mock upstream) for KAPOK_BENCH_CONTROL_GW_S
 * (10) seconds with no change, then as long with a gateway change put into etcd every second
 * (limits.default.rpm alternating; each builds and swaps a router). Ratio = with / without.
 */
async function gatewayUnderChanges(client: EtcdClient, endpoint: string, dir: string) {
  const seconds = Number(process.env.KAPOK_BENCH_CONTROL_GW_S ?? 10);
  const answer = JSON.stringify({
    id: 'x',
    object: 'chat.completion',
    created: 0,
    model: 'up',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  const prefix = '/kapok/benchgw/';
  const file = join(dir, 'gw.yaml');
  writeFileSync(
    file,
    stringify({
      ...CAPABILITIES_OFF_CONFIG,
      http: { host: '127.0.0.1', port: 0 },
      dataDir: join(dir, 'gwdata'),
      log: { level: 'warn', requests: false },
      control: { enabled: true, source: 'etcd', etcd: { endpoints: [endpoint], prefix } },
      gateway: {
        enabled: true,
        auth: { apiKeys: false, anonymous: true },
        providers: [{ name: 'a', type: 'openai', baseUrl: up }],
        models: [{ name: 'm', targets: [{ provider: 'a', model: 'up' }] }],
        limits: { default: { rpm: 100_000_000, tpm: 1_000_000_000 } },
      },
    }),
  );
  const app = await startApp(loadKapokConfig({ file }), { logDestination: { write: () => true } });
  const agent = new Agent({ connections: 8 });
  const url = `http://127.0.0.1:${app.port}/v1/chat/completions`;
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  const phase = async (changing: boolean) => {
    let ok = 0;
    let failed = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const res = await request(url, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.body.text();
        if (res.statusCode === 200) ok++;
        else failed++;
      }
    };
    let n = 0;
    const changer = changing
      ? setInterval(() => {
          n++;
          void client.put(`${prefix}gateway/limits/default/rpm`, String(100_000_000 - (n % 2)));
        }, 1000)
      : undefined;
    const workers = Array.from({ length: 8 }, worker);
    await sleep(seconds * 1000);
    stop = true;
    clearInterval(changer);
    await Promise.all(workers);
    return { perS: Math.round(ok / seconds), failed, changes: n };
  };
  try {
    await phase(false); // warm-up, not counted
    const none = await phase(false);
    const changing = await phase(true);
    const status = (await app.server.inject({ url: '/api/control/status' })).json();
    return {
      seconds,
      noChangesPerS: none.perS,
      changeEverySecondPerS: changing.perS,
      ratio: Math.round((changing.perS / none.perS) * 1000) / 1000,
      failed: none.failed + changing.failed,
      changesApplied: status.applied,
    };
  } finally {
    await app.stop();
    await agent.close();
    upstream.close();
  }
}
