import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { ALL_OFF } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Console sessions kept in the Store (SQLite in dataDir here): a session outlives a Kapok restart on
 * the same dataDir, and a hot reload of admin.tokens (control, file source) ends the sessions of a
 * removed token at once and applies a changed role on the next request.
 */

const ROOT = 'restart-admin-token-0123456';
const DASH = 'restart-viewer-token-012345';
const OPS = 'restart-operator-token-0123';

describe('console sessions across a restart and an admin.tokens reload', () => {
  const dir = tmpDir('kapok-console-restart-');
  const file = join(dir, 'kapok.yaml');
  const logs = captureLogs();
  let app: RunningApp | undefined;
  after(() => app?.stop());

  const write = (tokens: Array<{ name: string; role: string; token: string }>) => {
    writeFileSync(
      `${file}.new`,
      stringify({
        ...ALL_OFF,
        http: { host: '127.0.0.1', port: 0 },
        dataDir: join(dir, 'data'),
        log: { level: 'info', requests: false },
        admin: { tokens },
        control: { enabled: true, fileDebounceMs: 20 },
        gm: { enabled: true, kek: '00112233445566778899aabbccddeeff', verifyWorkers: 0 },
        console: { enabled: true, assetsDir: join(dir, 'no-build') },
      }),
    );
    renameSync(`${file}.new`, file);
  };
  const start = async () => {
    app = await startApp(loadKapokConfig({ file }), { logDestination: logs });
    return `http://127.0.0.1:${app.port}`;
  };
  const login = async (base: string, token: string) => {
    const r = await fetch(`${base}/console/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { csrf: string };
    return { cookie: (r.headers.get('set-cookie') ?? '').split(';')[0] ?? '', csrf: body.csrf };
  };
  const devices = (base: string, cookie: string) => fetch(`${base}/api/gm/devices`, { headers: { cookie } });
  const register = (base: string, s: { cookie: string; csrf: string }, serial: string) =>
    fetch(`${base}/api/gm/devices`, {
      method: 'POST',
      headers: { cookie: s.cookie, 'x-kapok-csrf': s.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ serial }),
    });
  const applied = async (want: number) => {
    const end = Date.now() + 10_000;
    for (;;) {
      const s = (
        await (app as RunningApp).server.inject({
          url: '/api/control/status',
          headers: { authorization: `Bearer ${ROOT}` },
        })
      ).json();
      if (s.applied >= want) return s;
      if (Date.now() > end) throw new Error(`no reload #${want}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('a session made before a restart is valid after it (same dataDir)', async () => {
    write([
      { name: 'root', role: 'admin', token: ROOT },
      { name: 'dash', role: 'viewer', token: DASH },
    ]);
    let base = await start();
    const s = await login(base, ROOT);
    assert.equal((await register(base, s, 'SN-BEFORE')).status, 201);
    await app?.stop();
    app = undefined;
    base = await start();
    assert.equal((await devices(base, s.cookie)).status, 200, 'the cookie still opens the admin API');
    assert.equal((await register(base, s, 'SN-AFTER')).status, 201, 'with the same CSRF token');
    const page = await fetch(`${base}/console/api/logout`, { method: 'POST', headers: { cookie: s.cookie } });
    assert.equal(page.status, 200);
    assert.equal((await devices(base, s.cookie)).status, 401, 'logout ends it in the Store');
  });

  it('a reload removing a token ends its sessions; a role change applies at once', async () => {
    const base = `http://127.0.0.1:${(app as RunningApp).port}`;
    const root = await login(base, ROOT);
    const dash = await login(base, DASH);
    assert.equal((await devices(base, dash.cookie)).status, 200);
    const before = (
      await (app as RunningApp).server.inject({
        url: '/api/control/status',
        headers: { authorization: `Bearer ${ROOT}` },
      })
    ).json();
    // dash removed, root down to viewer, a new operator token.
    write([
      { name: 'root', role: 'viewer', token: ROOT },
      { name: 'ops', role: 'operator', token: OPS },
    ]);
    const s = await applied(before.applied + 1);
    assert.ok(!s.pendingRestart.some((p: string) => p.startsWith('admin')), 'admin.tokens applied live');
    const gone = await devices(base, dash.cookie);
    assert.equal(gone.status, 401);
    assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'KAPOK_HTTP_UNAUTHORIZED');
    assert.equal((await devices(base, root.cookie)).status, 200, 'root still reads');
    const down = await register(base, root, 'SN-DOWNGRADED');
    assert.equal(down.status, 403);
    const err = ((await down.json()) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'KAPOK_HTTP_FORBIDDEN');
    assert.match(err.message, /session has role viewer/);
    // The bearer token follows the same list.
    const bearer = await fetch(`${base}/api/gm/devices`, { headers: { authorization: `Bearer ${DASH}` } });
    assert.equal(bearer.status, 401);
    const ops = await login(base, OPS);
    assert.equal((await register(base, ops, 'SN-OPS')).status, 201, 'a token added by the reload logs in');
    assert.match(logs.text(), /console sessions of removed tokens ended/);
    assert.ok(!logs.text().includes(DASH) && !logs.text().includes(ROOT), 'no token in the logs');
  });
});
