import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { type Browser, chromium } from 'playwright-core';
import { stringify } from 'yaml';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';
import { GATEWAY_MIGRATIONS } from '../src/gateway/migrations.js';
import {
  CAPABILITIES_OFF_CONFIG,
  freePort,
  kapokBin,
  root,
  spawnProcess,
  stats,
  stop,
  tempDir,
  waitFor200,
} from './lib.js';

/**
 * The web console (docs/console.md#performance), against the built bundle (dist/bundle, dist/console):
 * - gzipped JavaScript per page (first load: the entry, its imports, the page's chunk and its imports);
 * - first render of the overview in headless Chromium, fresh profile each run, against the
 *   navigation to /healthz in the same browser (its floor);
 * - a telemetry flood at 1,000 msg/s for KAPOK_BENCH_CONSOLE_FLOOD_S (10) seconds on the edge page:
 *   main-thread long tasks (wall time, PerformanceObserver);
 * - JS heap growth over KAPOK_BENCH_CONSOLE_HEAP_S (60; the target is for 600) seconds of live
 *   telemetry at 100 msg/s, after forced GCs;
 * - the usage page's two server calls over 1,000,000 usage rows (SQLite), p50/p99 as the client on
 *   loopback sees them, against the raw-row aggregation run in-process by better-sqlite3 (the server
 *   reads the per-minute sums: bench/usage-rollup.ts compares the two in-process).
 */
const CHROMIUM = process.env.KAPOK_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'bench-console-admin-token';

export async function consoleBench() {
  const manifest = JSON.parse(readFileSync(join(root, 'dist/console/manifest.json'), 'utf8')) as {
    entry: string;
    files: Record<string, { gzip: number; imports: string[]; dynamic: string[] }>;
  };
  const closure = (start: string[]) => {
    const seen = new Set<string>();
    const walk = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const i of manifest.files[f]?.imports ?? []) walk(i);
    };
    for (const f of start) walk(f);
    return [...seen].filter((f) => f.endsWith('.js')).reduce((a, f) => a + (manifest.files[f]?.gzip ?? 0), 0);
  };
  const pages = (manifest.files[manifest.entry]?.dynamic ?? []).filter((f) => !f.startsWith('chunk-'));
  const gzipKB = Object.fromEntries(
    pages.map((p) => [
      p.replace(/-[A-Z0-9]+\.js$/, ''),
      Math.round(closure([manifest.entry, p]) / 102.4) / 10,
    ]),
  );

  const t = tempDir();
  const port = await freePort();
  const mqttPort = await freePort();
  const dataDir = join(t.dir, 'data');
  // 1,000,000 usage rows over the last 24 h, written before the start (5 models, 50 keys, 2% errors).
  mkdirSync(dataDir, { recursive: true });
  // The raw rows go in before the per-minute sums exist; the 0002 migration back-fills those below.
  const store = await createSqliteStore({ file: join(dataDir, 'kapok.db') });
  await store.migrate(GATEWAY_MIGRATIONS.slice(0, 1));
  await store.close();
  const rows = Number(process.env.KAPOK_BENCH_CONSOLE_ROWS ?? 1_000_000);
  const db = new Database(join(dataDir, 'kapok.db'));
  const now = Date.now();
  const insert = db.prepare(
    `INSERT INTO gateway_usage (ts, subject, model, target, prompt_tokens, completion_tokens, latency_ms, status, stream)
     VALUES (?, ?, ?, 'up/m', ?, ?, 20, ?, 0)`,
  );
  db.transaction(() => {
    for (let i = 0; i < rows; i++)
      insert.run(
        now - 86_400_000 + Math.floor((i * 86_390_000) / rows),
        `key:k${i % 50}`,
        `model-${i % 5}`,
        10 + (i % 7),
        5,
        i % 50 === 0 ? 502 : 200,
      );
  })();
  const sql = `SELECT (ts - ?) / ? AS b, model AS grp, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens + completion_tokens)
     FROM gateway_usage WHERE ts >= ? AND ts < ? GROUP BY 1, 2`;
  const bare: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = performance.now();
    db.prepare(sql).all(now - 86_400_000, 1_800_000, now - 86_400_000, now + 60_000);
    bare.push(performance.now() - s);
  }
  db.close();
  const migrated = await createSqliteStore({ file: join(dataDir, 'kapok.db') });
  await migrated.migrate(GATEWAY_MIGRATIONS);
  await migrated.close();

  const file = join(t.dir, 'kapok.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir,
      http: { host: '127.0.0.1', port },
      log: { level: 'warn', requests: false },
      ...CAPABILITIES_OFF_CONFIG,
      admin: { tokens: [{ name: 'bench', role: 'admin', token: TOKEN }] },
      gateway: { enabled: true },
      edge: {
        enabled: true,
        mqtt: { host: '127.0.0.1', port: mqttPort },
        auth: { anonymous: true },
        acl: { grants: [{ who: 'anonymous', publish: ['telemetry/#'], subscribe: [] }] },
      },
      console: { enabled: true },
    }),
  );
  const child = spawnProcess([process.execPath, kapokBin, 'up', '--config', file], {});
  let browser: Browser | undefined;
  try {
    await waitFor200(`http://127.0.0.1:${port}/healthz`, performance.now(), child, 60_000);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const timed = async (path: string, n: number) => {
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = performance.now();
        const r = await fetch(`${base}${path}`, { headers: auth });
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
        xs.push(performance.now() - s);
      }
      const sorted = [...xs].sort((a, b) => a - b);
      return {
        ...stats(xs),
        p99: Math.round((sorted[Math.floor(0.99 * (sorted.length - 1))] as number) * 10) / 10,
      };
    };
    const series = await timed('/api/gateway/usage/series?by=model&buckets=48', 5);
    const records = await timed('/api/gateway/usage/records?limit=50', 50);
    // Printed at once: the browser part that follows takes minutes on a busy machine.
    process.stderr.write(
      `  usage over ${rows} rows: series ${JSON.stringify(series)}, records page ${JSON.stringify(records)}, bare ${JSON.stringify(stats(bare))}\n`,
    );

    // A publisher for telemetry (the edge page's live feed).
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'bench-console' });
    pub.publish('telemetry/press-01/env', JSON.stringify({ temp: 20, rh: 40 }), { qos: 1 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    const login = await fetch(`${base}/console/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    const sid = /kapok_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1] as string;
    const fresh = async () => {
      const c = await (browser as Browser).newContext({ viewport: { width: 1400, height: 900 } });
      await c.addCookies([{ name: 'kapok_session', value: sid, url: base }]);
      return c;
    };
    const render: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < 7; i++) {
      const c = await fresh();
      const p = await c.newPage();
      await p.goto(`${base}/console#/overview`);
      await p.locator('td:text-is("gateway")').first().waitFor();
      render.push((await p.evaluate(() => performance.now())) as number);
      const q = await c.newPage();
      await q.goto(`${base}/healthz`);
      floor.push((await q.evaluate(() => performance.now())) as number);
      await c.close();
    }

    const c = await fresh();
    const page = await c.newPage();
    await page.goto(`${base}/console#/edge`);
    await page.locator('td.device-name').first().waitFor();
    const cdp = await c.newCDPSession(page);
    await cdp.send('Performance.enable');
    const heap = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const m = (await cdp.send('Performance.getMetrics')) as {
        metrics: Array<{ name: string; value: number }>;
      };
      return (m.metrics.find((x) => x.name === 'JSHeapUsedSize')?.value ?? 0) / 1048576;
    };
    const publishFor = async (seconds: number, perSecond: number) => {
      for (let s = 0; s < seconds; s++) {
        const started = Date.now();
        for (let i = 0; i < perSecond; i++)
          pub.publish(
            `telemetry/press-0${i % 10}/env`,
            JSON.stringify({ temp: 20 + (i % 50) / 10, rh: 40 }),
            { qos: 0 },
          );
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
      }
    };
    await page.evaluate(
      `window.__long = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({ type: 'longtask' });`,
    );
    const floodS = Number(process.env.KAPOK_BENCH_CONSOLE_FLOOD_S ?? 10);
    await publishFor(floodS, 1000);
    const long = (await page.evaluate('window.__long')) as number[];
    const heapS = Number(process.env.KAPOK_BENCH_CONSOLE_HEAP_S ?? 60);
    const heap0 = await heap();
    await publishFor(heapS, 100);
    const heap1 = await heap();
    await pub.endAsync();
    await c.close();

    const renderStats = stats(render);
    return {
      gzipKB,
      firstPageMaxGzipKB: Math.max(...Object.values(gzipKB)),
      overviewFirstRenderMs: renderStats,
      healthzNavigationMs: stats(floor),
      ratio: { renderToFloor: Math.round((renderStats.median / stats(floor).median) * 10) / 10 },
      flood: {
        seconds: floodS,
        perSecond: 1000,
        longTasks: long.length,
        longTaskMaxMs: Math.round(Math.max(0, ...long)),
        over50: long.filter((d) => d > 50).length,
      },
      heap: {
        seconds: heapS,
        perSecond: 100,
        startMB: Math.round(heap0 * 10) / 10,
        endMB: Math.round(heap1 * 10) / 10,
        growthMB: Math.round((heap1 - heap0) * 10) / 10,
      },
      usage: { rows, seriesMs: series, recordsPageMs: records, bareSqliteSeriesMs: stats(bare) },
      targets: {
        firstPageGzipUnder300KB: Math.max(...Object.values(gzipKB)) <= 300,
        overviewRenderUnder1500ms: renderStats.median <= 1500,
        heapGrowthUnder20MB: heap1 - heap0 < 20,
        usagePageP99Under100ms: records.p99 <= 100 && series.p99 <= 100,
        noLongTaskOver50ms: long.every((d) => d <= 50),
      },
      note: 'measured on the machine named in "machine"; a shared box inflates wall times (render, long tasks)',
    };
  } finally {
    await browser?.close();
    await stop(child);
    t.remove();
  }
}
