import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createEtcdClient } from '../src/adapters/etcd/client.js';
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
    const client = createEtcdClient({ endpoints: [endpoint] });
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
    await app.stop();
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
      verdict: {
        p99Under50Ms: q(applied, 0.99) <= 50,
        allApplied: status.applied === changes && status.rejected === 0,
      },
    };
  } finally {
    etcd.kill('SIGKILL');
    tmp.remove();
  }
}
