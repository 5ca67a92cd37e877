import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import OpenAI from 'openai';
import { type Browser, chromium, type Page } from 'playwright-core';
import { mlpModel, writeModel } from '../../src/cli/demo/onnx-models.js';
import { builtinScenarios, simulate } from '../../src/v2x/index.js';
import { kapokUp, type Running } from '../helpers/cli.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { freePort } from '../helpers/ports.js';

/**
 * The web console in a real browser (Debian's Chromium, headless, driven by playwright-core) against
 * one real `kapok up`: gateway (in front of a FAKE LLM upstream, outside the system: fixed answers),
 * inference (a generated ONNX model), edge with its embedded MQTT broker fed by mqtt.js, V2X fed by
 * the simulator, GM, jobs and audit. One browser and one Kapok for every case here (time budget).
 * Screenshots of each page go to $KAPOK_TEST_OUTPUT or test/output/console (gitignored).
 */

const CHROMIUM = process.env.KAPOK_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'console-admin-token-0123456789';
const XSS = '<img src=x onerror=alert(1)>';
const OUT = resolve(process.env.KAPOK_TEST_OUTPUT ?? 'test/output', 'console');
const root = new URL('../../', import.meta.url).pathname;
/** The page's globals as functions run in the browser see them (this file is typed against Node's). */
type Dom = { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } };
const PAGES = ['overview', 'gateway', 'inference', 'edge', 'v2x', 'devices', 'jobs', 'audit'] as const;

describe('web console (Chromium against kapok up)', () => {
  let kapok: Running;
  let base: string;
  let mqttUrl: string;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  const apiCalls: string[] = [];
  let dir = '';
  let llm: FakeLlm | undefined;

  // Here, not inside before(): node:test runs an after() registered in a hook right after that hook.
  after(async () => {
    await browser?.close();
    if (kapok) {
      kapok.child.kill('SIGTERM');
      await kapok.exited;
    }
    await llm?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };

  /** Loads a page afresh (a full document load) and counts the API calls it makes until it settles. */
  const load = async (name: string, ready: string) => {
    await page.goto('about:blank');
    apiCalls.length = 0;
    await page.goto(`${base}/console#/${name}`);
    await page.locator(ready).first().waitFor({ timeout: 15_000 });
    await page.waitForLoadState('networkidle');
    return [...apiCalls];
  };

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install -y chromium (.ci/run does)`);
    mkdirSync(OUT, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'kapok-console-'));
    const built = spawnSync(
      process.execPath,
      [join(root, 'scripts/bundle-console.mjs'), join(dir, 'console')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(built.status, 0, built.stderr);
    writeModel(join(dir, 'models'), 'demo-mlp', 1, mlpModel());
    llm = await startFakeLlm('upstream');
    const mqttPort = await freePort();
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const config = {
      dataDir: join(dir, 'data'),
      log: { level: 'info', requests: false },
      grpc: { port: await freePort() },
      admin: { tokens: [{ name: 'ops', role: 'admin', token: TOKEN }] },
      gateway: {
        providers: [{ name: 'up', type: 'openai', baseUrl: llm.url }],
        models: [{ name: 'chat', targets: [{ provider: 'up', model: 'm' }] }],
      },
      inference: { repository: join(dir, 'models') },
      edge: {
        mqtt: { host: '127.0.0.1', port: mqttPort },
        auth: { anonymous: true },
        acl: {
          grants: [{ who: 'anonymous', publish: ['telemetry/#', 'v2x/#'], subscribe: ['v2x/+/strategy'] }],
        },
        fanout: { maxQueue: 10_000 },
      },
      v2x: {
        ws: { positionsEveryMs: 100 },
        // The box running the tests is shared and busy: BSMs may arrive late, not stale.
        maxAgeMs: 10_000,
        vehicleTtlMs: 60_000,
        zones: [
          {
            // Covers the simulator's roads (src/v2x/sim/world.ts): vehicles outside every zone are dropped.
            id: 'tianhe',
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [113.319, 23.087],
                  [113.359, 23.087],
                  [113.359, 23.134],
                  [113.319, 23.134],
                  [113.319, 23.087],
                ],
              ],
            },
          },
        ],
      },
      gm: { enabled: true },
      audit: { enabled: true, kek: '00112233445566778899aabbccddeeff' },
      jobs: { enabled: true, executors: ['noop'] },
      console: { assetsDir: join(dir, 'console'), pulseMs: 500 },
    };
    const file = join(dir, 'kapok.yaml');
    writeFileSync(file, JSON.stringify(config));
    kapok = await kapokUp({}, ['--config', file], 60_000);
    base = `http://127.0.0.1:${kapok.port}`;

    // Live data through clients no one here wrote: the openai SDK, mqtt.js; OIP over plain fetch.
    const key = (await admin('POST', '/api/gateway/keys', { name: 'console-test' })).key as string;
    const openai = new OpenAI({ apiKey: key, baseURL: `${base}/v1` });
    for (let i = 0; i < 3; i++)
      await openai.chat.completions.create({
        model: 'chat',
        messages: [{ role: 'user', content: `hi ${i}` }],
      });
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${base}/v2/models/demo-mlp/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: Array(16).fill(i) }],
        }),
      });
      assert.equal(r.status, 200);
    }
    const pub = await mqtt.connectAsync(mqttUrl, { clientId: 'console-feed' });
    for (const device of ['press-01', 'press-02', XSS])
      await pub.publishAsync(`telemetry/${device}/env`, JSON.stringify({ temp: 21.5, rh: 40 }), { qos: 1 });
    await pub.endAsync();
    await admin('POST', '/api/gm/devices', { serial: 'obu-0001', group: 'fleet' });
    await admin('POST', '/api/gm/devices', { serial: 'obu-0002', group: 'fleet' });
    await admin('POST', '/api/jobs', {
      name: 'nightly',
      tasks: [
        { name: 'prep', run: { executor: 'noop' } },
        { name: 'train', needs: ['prep'], run: { executor: 'noop' } },
        { name: 'eval', needs: ['train'], run: { executor: 'noop' } },
      ],
    });

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-US' });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('request', (r) => {
      if (r.resourceType() === 'fetch' || r.resourceType() === 'xhr')
        apiCalls.push(new URL(r.url()).pathname);
    });
  });

  it('asks for the admin token, refuses a wrong one, and logs in with a session cookie', async () => {
    await page.goto(`${base}/console`);
    await page.locator('input[type=password]').fill('not-the-token-at-all');
    await page.locator('button[type=submit]').click();
    await page.locator('.problem').waitFor();
    assert.match((await page.locator('.problem').textContent()) ?? '', /admin\.tokens/);
    await page.locator('input[type=password]').fill(TOKEN);
    await page.locator('button[type=submit]').click();
    await page.locator('nav a[data-page=gateway]').waitFor();
    const cookie = (await page.context().cookies()).find((c) => c.name === 'kapok_session');
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(
      await page.evaluate(() =>
        (globalThis as unknown as { document: { cookie: string } }).document.cookie.includes('kapok_session'),
      ),
      false,
    );
    await page.screenshot({ path: join(OUT, 'login-done.png') });
  });

  it('renders each page with live data in at most 3 API calls per load', async () => {
    const ready: Record<(typeof PAGES)[number], string> = {
      overview: 'td:text-is("gateway")',
      gateway: '.chart .u-legend >> text=chat',
      inference: 'td >> text=demo-mlp',
      edge: 'td.device-name >> text=press-01',
      v2x: 'td >> text=tianhe',
      devices: 'td >> text=obu-0001',
      jobs: 'svg.dag g[data-task=eval]',
      audit: 'td >> text=console.login',
    };
    for (const name of PAGES) {
      const calls = await load(name, ready[name]);
      assert.ok(calls.length <= 3, `${name}: ${calls.length} API calls on load: ${calls.join(', ')}`);
      if (name === 'inference')
        // The queue depth chart (kapok_inference_queue_depth via the pulse) names the model served.
        await page
          .locator('section.card:has(h2:has-text("queue depth")) .u-legend >> text=demo-mlp')
          .waitFor({ timeout: 15_000 });
      await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
    }
  });

  it('shows a device named like markup as text, never as markup', async () => {
    await load('edge', 'td.device-name >> text=press-01');
    const cell = page.locator('td.device-name', { hasText: XSS });
    assert.equal(await cell.count(), 1);
    assert.equal(await cell.textContent(), XSS);
    assert.equal(await page.locator('main img').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  it('stays responsive under a 1,000 msg/s telemetry flood (no main-thread task over 50 ms of CPU)', async () => {
    await load('edge', 'td.device-name >> text=press-01');
    // Chromium's own trace of the page's main thread: each task's wall time (dur) and the CPU time
    // the thread spent on it (tdur). The box running the tests is shared (load far above its 2 cores),
    // so wall time there includes time the thread waited for a CPU; the bench reports wall time
    // (long tasks) on a quiet machine.
    await browser.startTracing(page, {
      categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'],
    });
    const pub = await mqtt.connectAsync(mqttUrl, { clientId: 'console-flood' });
    // 3 s here (the bench runs the full 10 s): 1,000 messages a second over 10 devices.
    for (let s = 0; s < 3; s++) {
      const started = Date.now();
      for (let i = 0; i < 1000; i++)
        pub.publish(`telemetry/press-0${i % 10}/env`, JSON.stringify({ temp: 20 + (i % 50) / 10, rh: 40 }), {
          qos: 0,
        });
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
    }
    await pub.endAsync();
    const trace = JSON.parse((await browser.stopTracing()).toString()) as {
      traceEvents: Array<{
        name: string;
        ph: string;
        pid: number;
        tid: number;
        ts: number;
        dur?: number;
        tdur?: number;
        args?: { name?: string; data?: { type?: string; functionName?: string; url?: string } };
      }>;
    };
    const main = new Set(
      trace.traceEvents
        .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain')
        .map((e) => `${e.pid}:${e.tid}`),
    );
    const tasks = trace.traceEvents.filter(
      (e) => e.name === 'RunTask' && e.ph === 'X' && main.has(`${e.pid}:${e.tid}`),
    );
    assert.ok(tasks.length > 10, `main-thread tasks traced: ${tasks.length}`);
    const cpuMs = tasks.map((e) => (e.tdur ?? 0) / 1000).sort((x, y) => y - x);
    // What the longest tasks did (the trace events nested in each, by name; an event's type or
    // function named): the post handling (EventDispatch message), the chart redraw (effects after
    // a frame: FireAnimationFrame / TimerFire), style and layout, or the collector.
    const onMain = trace.traceEvents.filter((e) => e.ph === 'X' && main.has(`${e.pid}:${e.tid}`));
    const longest = [...tasks].sort((x, y) => (y.tdur ?? 0) - (x.tdur ?? 0)).slice(0, 5);
    const breakdown = longest.map((task) => {
      const end = task.ts + (task.dur ?? 0);
      const parts = new Map<string, number>();
      for (const e of onMain) {
        if (e === task || e.name === 'RunTask' || e.ts < task.ts || e.ts + (e.dur ?? 0) > end) continue;
        const d = e.args?.data;
        const what = `${e.name}${d?.type ? `:${d.type}` : ''}${d?.functionName ? `:${d.functionName}` : ''}`;
        parts.set(what, (parts.get(what) ?? 0) + (e.dur ?? 0) / 1000);
      }
      return {
        cpuMs: (task.tdur ?? 0) / 1000,
        wallMs: (task.dur ?? 0) / 1000,
        inside: Object.fromEntries([...parts].sort((x, y) => y[1] - x[1]).slice(0, 8)),
      };
    });
    const wallMs = tasks.map((e) => (e.dur ?? 0) / 1000).sort((x, y) => y - x);
    assert.ok(
      (cpuMs[0] ?? 0) <= 50,
      `a main-thread task took ${cpuMs[0]} ms of CPU (top: ${cpuMs.slice(0, 5).map(Math.round).join(', ')}; wall top: ${wallMs.slice(0, 5).map(Math.round).join(', ')}): ${JSON.stringify(breakdown[0])}`,
    );
    writeFileSync(
      join(OUT, 'flood-tasks.json'),
      JSON.stringify(
        { tasks: tasks.length, cpuTopMs: cpuMs.slice(0, 10), wallTopMs: wallMs.slice(0, 10), breakdown },
        null,
        2,
      ),
    );
    // Responsive: a click still changes the chosen series, and the live rate was seen.
    await page.locator('button.chip', { hasText: 'rh=' }).first().click();
    await page.locator('button.chip.on', { hasText: 'rh=' }).waitFor();
    const received = await page.locator('.stat', { hasText: 'messages/s' }).locator('.value').textContent();
    assert.ok(Number((received ?? '').replace(/,/g, '')) > 0, `live rate ${received}`);
    await page.screenshot({ path: join(OUT, 'edge-flood.png'), fullPage: true });
  });

  it('draws 2,000 vehicles on the V2X map from positions pushed 10 times a second', async () => {
    await load('v2x', 'td >> text=tianhe');
    const abort = new AbortController();
    let simError: unknown = null;
    const sim = simulate({
      url: mqttUrl,
      // Each vehicle reports twice a second here (4,000 BSM/s on a shared 2-core box); the map's
      // positions are pushed 10 times a second (v2x.ws.positionsEveryMs: 100) and drawn at that pace.
      vehicles: 2000,
      rateHz: 2,
      durationS: 8,
      clients: 1,
      scenarios: builtinScenarios().slice(0, 1),
      format: 'uper',
      signal: abort.signal,
    }).catch((err: unknown) => {
      simError = err;
    });
    try {
      const map = page.locator('canvas.map');
      await page
        .waitForFunction(
          () =>
            Number(
              (globalThis as unknown as Dom).document
                .querySelector('canvas.map')
                ?.getAttribute('data-vehicles'),
            ) >= 2000,
          null,
          { timeout: 30_000 },
        )
        .catch(async (err: Error) => {
          const stats = await admin('GET', '/api/v2x/stats');
          const shown = await map.getAttribute('data-vehicles');
          throw new Error(
            `${err.message}; simulator: ${simError ?? 'no error'}; shown ${shown}; ${JSON.stringify(stats)}`,
          );
        });
      const draws0 = Number(await map.getAttribute('data-draws'));
      await page.waitForFunction(
        (d0) =>
          Number(
            (globalThis as unknown as Dom).document.querySelector('canvas.map')?.getAttribute('data-draws'),
          ) >=
          d0 + 5,
        draws0,
        { timeout: 10_000 },
      );
      assert.ok(Number(await map.getAttribute('data-vehicles')) >= 2000);
      await page.screenshot({ path: join(OUT, 'v2x-2000.png'), fullPage: true });
    } finally {
      abort.abort();
      await sim;
    }
  });

  it('switches to Chinese and keeps it across loads', async () => {
    await load('overview', 'td:text-is("gateway")');
    await page.locator('.lang button', { hasText: '中文' }).click();
    await page.locator('nav a', { hasText: '总览' }).waitFor();
    assert.equal(
      await page.evaluate(
        () =>
          (globalThis as unknown as { document: { documentElement: { lang: string } } }).document
            .documentElement.lang,
      ),
      'zh-CN',
    );
    await load('gateway', 'nav a >> text=网关');
    assert.ok(((await page.locator('main h1').textContent()) ?? '').includes('网关'));
    await page.screenshot({ path: join(OUT, 'gateway-zh.png'), fullPage: true });
  });
});
