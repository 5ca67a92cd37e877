import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { ALL_OFF } from '../helpers/config.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Under continuous gateway load (FAKE upstreams: stand-ins for model servers, outside the system),
 * a route change and a quota change in the config file apply with zero failed requests.
 */
describe('gateway hot reload under load', () => {
  const dir = tmpDir('kapok-gwreload-');
  const file = join(dir, 'kapok.yaml');
  let a: FakeLlm;
  let b: FakeLlm;
  let app: RunningApp;
  const agent = new Agent({ connections: 8 });
  const gateway = (provider: string, rpm: number) => ({
    enabled: true,
    auth: { apiKeys: false, anonymous: true },
    providers: [
      { name: 'a', type: 'openai', baseUrl: a.url },
      { name: 'b', type: 'openai', baseUrl: b.url },
    ],
    models: [{ name: 'm', targets: [{ provider, model: `up-${provider}` }] }],
    limits: { default: { rpm, tpm: 100_000_000 } },
  });
  const write = (g: Record<string, unknown>) => {
    const doc = {
      ...ALL_OFF,
      http: { host: '127.0.0.1', port: 0 },
      dataDir: join(dir, 'data'),
      log: { level: 'warn' },
      control: { enabled: true, fileDebounceMs: 10 },
      gateway: g,
    };
    writeFileSync(`${file}.new`, stringify(doc));
    renameSync(`${file}.new`, file);
  };

  before(async () => {
    a = await startFakeLlm('a');
    b = await startFakeLlm('b');
    write(gateway('a', 1_000_000));
    app = await startApp(loadKapokConfig({ file }), { logDestination: captureLogs() });
  });
  after(async () => {
    await app?.stop();
    await agent.close();
    await a?.close();
    await b?.close();
  });

  it('switches a route and a quota live; every request under load succeeds', async () => {
    const url = `http://127.0.0.1:${app.port}/v1/chat/completions`;
    const results: Array<{ status: number; limit: string | undefined }> = [];
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const res = await request(url, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
        });
        await res.body.text();
        results.push({
          status: res.statusCode,
          limit: res.headers['x-ratelimit-limit-requests'] as string | undefined,
        });
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    const waitFor = async (what: string, check: () => boolean) => {
      const end = Date.now() + 15_000;
      while (!check()) {
        if (Date.now() > end) throw new Error(`timed out: ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor('load on a', () => a.requests.length > 20);
    write(gateway('b', 1_000_000));
    await waitFor('route to b', () => b.requests.length > 20);
    const aAfter = a.requests.length;
    write(gateway('b', 999_999));
    await waitFor('new quota', () => results.some((r) => r.limit === '999999'));
    const n = results.length;
    await waitFor('more load', () => results.length > n + 20);
    stop = true;
    await Promise.all(workers);

    const failed = results.filter((r) => r.status !== 200);
    assert.equal(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 5))}`);
    assert.ok(results.length > 60, `${results.length} requests`);
    assert.ok(
      a.requests.length - aAfter <= 8,
      'a gets no new work after the switch (at most the requests in flight)',
    );
    assert.equal(b.requests.at(-1)?.body.model, 'up-b');
    const s = (await app.server.inject({ url: '/api/control/status' })).json();
    assert.deepEqual(s.pendingRestart, []);
    assert.equal(s.applied, 2);
  });

  it('a change the gateway cannot apply live (auth) waits for a restart; the live part of it applies', async () => {
    const g = gateway('a', 1_000_000);
    write({ ...g, auth: { ...g.auth, keyCacheMs: 1000 } });
    const end = Date.now() + 10_000;
    let s = (await app.server.inject({ url: '/api/control/status' })).json();
    while (s.applied < 3 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      s = (await app.server.inject({ url: '/api/control/status' })).json();
    }
    assert.deepEqual(s.pendingRestart, ['gateway.auth.keyCacheMs']);
    const before = a.requests.length;
    const res = await request(`http://127.0.0.1:${app.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.equal(a.requests.length, before + 1, 'the route back to a applied live');
  });
});
