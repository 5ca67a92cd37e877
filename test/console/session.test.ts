import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type RunningApp, startApp } from '../../src/app.js';
import { pickLang } from '../../src/console/capability.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The console's session over real sockets: login with a token of admin.tokens, the cookie standing
 * in for the bearer token on other capabilities' admin APIs, the CSRF and Origin checks, logout, the
 * live overview socket, and the page's security and cache headers.
 */

const ADMIN = 'console-admin-token-0123';
const VIEWER = 'console-viewer-token-0123';
const root = new URL('../../', import.meta.url).pathname;

describe('console session', () => {
  let app: RunningApp;
  let base: string;
  let host: string;
  const logs = captureLogs();
  const dir = tmpDir('kapok-console-session-');

  before(async () => {
    const built = spawnSync(
      process.execPath,
      [join(root, 'scripts/bundle-console.mjs'), join(dir, 'console')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(built.status, 0, built.stderr);
    app = await startApp(
      {
        config: testConfig({
          dataDir: join(dir, 'data'),
          http: { host: '127.0.0.1', port: 0 },
          log: { level: 'info', requests: false },
          admin: {
            tokens: [
              { name: 'root', role: 'admin', token: ADMIN },
              { name: 'dash', role: 'viewer', token: VIEWER },
            ],
          },
          gateway: { enabled: true },
          gm: { enabled: true, kek: '00112233445566778899aabbccddeeff', verifyWorkers: 0 },
          console: { enabled: true, assetsDir: join(dir, 'console'), pulseMs: 500 },
        }),
        file: null,
        envOverrides: new Map(),
      },
      { logDestination: logs },
    );
    host = `127.0.0.1:${app.port}`;
    base = `http://${host}`;
  });
  after(() => app?.stop());

  const login = async (token: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${base}/console/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ token }),
    });
    const body = (await r.json()) as { csrf?: string; error?: { code: string; message: string } };
    const cookie = r.headers.get('set-cookie') ?? '';
    return { status: r.status, body, setCookie: cookie, cookie: cookie.split(';')[0] ?? '' };
  };
  const call = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });

  it('the routes the console added refuse a caller with no token or cookie; a viewer may read', async () => {
    for (const path of [
      '/api/gateway/usage/series',
      '/api/gateway/usage/records?limit=5',
      '/api/gm/devices',
    ]) {
      const none = await fetch(`${base}${path}`);
      assert.equal(none.status, 401, path);
      assert.equal(
        ((await none.json()) as { error: { code: string } }).error.code,
        'KAPOK_HTTP_UNAUTHORIZED',
      );
      const viewer = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${VIEWER}` } });
      assert.equal(viewer.status, 200, `${path}: ${await viewer.clone().text()}`);
    }
    const host = new URL(base).host;
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://${host}/ws/console`, { headers: { origin: base } });
      ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
    });
    assert.equal(refused, 401);
  });

  it('refuses a token outside admin.tokens with a code and no echo of the token', async () => {
    const r = await login('wrong-token-wrong-token');
    assert.equal(r.status, 401);
    assert.equal(r.body.error?.code, 'KAPOK_CONSOLE_LOGIN_FAILED');
    assert.equal(r.setCookie, '');
    assert.ok(!JSON.stringify(r.body).includes('wrong-token'));
    const empty = await login('');
    assert.equal(empty.status, 400);
  });

  it('logs in into an httpOnly, SameSite=Strict cookie that authorises other capabilities’ admin APIs', async () => {
    const r = await login(ADMIN);
    assert.equal(r.status, 200);
    assert.match(
      r.setCookie,
      /^kapok_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    assert.ok(!logs.text().includes(ADMIN), 'the token is never logged');
    const keys = await call('GET', '/api/gateway/keys', { cookie: r.cookie });
    assert.equal(keys.status, 200);
    assert.equal((await call('GET', '/api/gateway/keys', {})).status, 401);
    assert.equal((await call('GET', '/api/gateway/keys', { cookie: 'kapok_session=forged' })).status, 401);
  });

  it('needs the CSRF token for a change made with the cookie, and refuses another origin', async () => {
    const { cookie, body } = await login(ADMIN);
    const csrf = body.csrf as string;
    const bare = await call('POST', '/api/gateway/keys', { cookie }, { name: 'via-cookie' });
    assert.equal(bare.status, 403);
    assert.equal(((await bare.json()) as { error: { code: string } }).error.code, 'KAPOK_HTTP_CSRF');
    const wrong = await call(
      'POST',
      '/api/gateway/keys',
      { cookie, 'x-kapok-csrf': 'A'.repeat(32) },
      { name: 'x' },
    );
    assert.equal(wrong.status, 403);
    const list = (await (await call('GET', '/api/gateway/keys', { cookie })).json()) as { keys: unknown[] };
    assert.equal(list.keys.length, 0, 'nothing created by the refused requests');
    const ok = await call(
      'POST',
      '/api/gateway/keys',
      { cookie, 'x-kapok-csrf': csrf },
      { name: 'via-cookie' },
    );
    assert.equal(ok.status, 201);
    const foreign = await call('GET', '/api/gateway/keys', { cookie, origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    const same = await call('GET', '/api/gateway/keys', { cookie, origin: base });
    assert.equal(same.status, 200);
    const loginCsrf = await login(ADMIN, { origin: 'https://evil.example' });
    assert.equal(loginCsrf.status, 403);
  });

  it('keeps the role of the token: a viewer session reads and cannot revoke', async () => {
    const { cookie, body } = await login(VIEWER);
    assert.equal((await call('GET', '/api/gm/devices', { cookie })).status, 200);
    const del = await call('DELETE', '/api/gm/devices/SN-1', { cookie, 'x-kapok-csrf': body.csrf as string });
    assert.equal(del.status, 403);
    assert.equal(((await del.json()) as { error: { code: string } }).error.code, 'KAPOK_HTTP_FORBIDDEN');
  });

  it('ends the session at logout', async () => {
    const { cookie } = await login(ADMIN);
    const out = await call('POST', '/console/api/logout', { cookie });
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await call('GET', '/api/gateway/keys', { cookie })).status, 401);
  });

  it('pages GM registrations with a keyset cursor', async () => {
    const auth = { authorization: `Bearer ${ADMIN}` };
    for (const s of ['SN-C', 'SN-A', 'SN-B'])
      assert.equal((await call('POST', '/api/gm/devices', auth, { serial: s })).status, 201);
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const r = (await (
        await call('GET', `/api/gm/devices?limit=2${after ? `&after=${after}` : ''}`, auth)
      ).json()) as { devices: Array<{ serial: string }>; next: string | null };
      assert.ok(r.devices.length <= 2);
      seen.push(...r.devices.map((d) => d.serial));
      after = r.next;
    } while (after);
    assert.deepEqual(seen, ['SN-A', 'SN-B', 'SN-C']);
    assert.equal((await call('GET', '/api/gm/devices?limit=0', auth)).status, 400);
  });

  it('streams the overview on /ws/console to a session, not to another origin', async () => {
    const { cookie } = await login(VIEWER);
    const first = await new Promise<{
      type: string;
      samples: unknown[];
      readiness: { components: unknown[] };
    }>((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}/ws/console`, { headers: { cookie, origin: base } });
      ws.once('message', (d) => {
        ws.close();
        resolve(JSON.parse(String(d)));
      });
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade ${res.statusCode}`)));
    });
    assert.equal(first.type, 'history');
    assert.ok(Array.isArray(first.samples));
    assert.ok(first.readiness.components.length > 0);
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://${host}/ws/console`, {
        headers: { cookie, origin: 'https://evil.example' },
      });
      ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
    });
    assert.equal(refused, 403);
  });

  it('serves the page with CSP, no-store and the language of Accept-Language; assets immutable', async () => {
    const page = await fetch(`${base}/console`, {
      headers: { 'accept-language': 'zh-CN,zh;q=0.9,en;q=0.5' },
    });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /^default-src 'self';/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    const html = await page.text();
    assert.match(html, /<html lang="zh-CN">/);
    assert.ok(html.includes('&#34;authenticated&#34;:false'), 'the session is in the page, escaped');
    const js = /src="(\/console\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    assert.ok(js, 'the entry script is linked');
    const asset = await fetch(`${base}${js}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(asset.status, 200);
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(asset.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal((await fetch(`${base}/console/assets/nope.js`)).status, 404);
    const en = await (
      await fetch(`${base}/console`, { headers: { 'accept-language': 'de-DE,en;q=0.8' } })
    ).text();
    assert.match(en, /<html lang="en">/);
  });

  it('picks the language: the switch cookie first, then Accept-Language by weight', () => {
    const req = (h: Record<string, string>) => ({ headers: h }) as Parameters<typeof pickLang>[0];
    assert.equal(pickLang(req({ 'accept-language': 'en;q=0.4, zh-TW;q=0.8' })), 'zh-CN');
    assert.equal(pickLang(req({ 'accept-language': 'fr, en-GB;q=0.5' })), 'en');
    assert.equal(pickLang(req({ cookie: 'kapok_lang=en', 'accept-language': 'zh-CN' })), 'en');
    assert.equal(pickLang(req({})), 'en');
  });
});

describe('console not built', () => {
  it('answers 503 KAPOK_CONSOLE_NOT_BUILT naming npm run build, and still starts', async () => {
    const dir = tmpDir('kapok-console-unbuilt-');
    const logs = captureLogs();
    const app = await startApp(
      {
        config: testConfig({
          dataDir: join(dir, 'data'),
          http: { host: '127.0.0.1', port: 0 },
          console: { enabled: true, assetsDir: join(dir, 'nothing-here') },
        }),
        file: null,
        envOverrides: new Map(),
      },
      { logDestination: logs },
    );
    try {
      const r = await fetch(`http://127.0.0.1:${app.port}/console`);
      assert.equal(r.status, 503);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'KAPOK_CONSOLE_NOT_BUILT');
      assert.match(body.error.message, /npm run build/);
      assert.match(logs.text(), /console not built/);
    } finally {
      await app.stop();
    }
  });
});
