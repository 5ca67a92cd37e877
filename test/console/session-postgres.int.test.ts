import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Two Kapok instances on one PostgreSQL (a schema of its own): a console session made on one is
 * valid on the other, and a logout on either ends it on both. No sticky sessions needed.
 */

const { schema, url } = pgSchema('kapok_sessions');
const { skip } = await postgresGate();
const ROOT = 'fleet-admin-token-01234567';

describe('console sessions shared by two instances on PostgreSQL', { skip }, () => {
  const dir = tmpDir('kapok-console-pg-');
  const apps: RunningApp[] = [];
  before(async () => {
    await pgAdmin(`CREATE SCHEMA ${schema}`);
    for (const name of ['a', 'b'])
      apps.push(
        await startApp(
          {
            config: testConfig({
              dataDir: join(dir, name),
              http: { host: '127.0.0.1', port: 0 },
              store: { driver: 'postgres', url, poolMax: 2 },
              admin: { tokens: [{ name: 'root', role: 'admin', token: ROOT }] },
              gm: { enabled: true, kek: '00112233445566778899aabbccddeeff', verifyWorkers: 0 },
              console: { enabled: true, assetsDir: join(dir, 'no-build') },
            }),
            file: null,
            envOverrides: new Map(),
          },
          { logDestination: captureLogs() },
        ),
      );
  });
  after(async () => {
    await Promise.allSettled(apps.map((a) => a.stop()));
    await pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  it('a session made on one instance opens the other; logout on the other ends it on both', async () => {
    const [a, b] = apps.map((x) => `http://127.0.0.1:${x.port}`) as [string, string];
    const r = await fetch(`${a}/console/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: ROOT }),
    });
    assert.equal(r.status, 200);
    const { csrf } = (await r.json()) as { csrf: string };
    const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const post = await fetch(`${b}/api/gm/devices`, {
      method: 'POST',
      headers: { cookie, 'x-kapok-csrf': csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ serial: 'SN-FLEET' }),
    });
    assert.equal(post.status, 201, await post.clone().text());
    assert.equal((await fetch(`${a}/api/gm/devices`, { headers: { cookie } })).status, 200);
    await fetch(`${b}/console/api/logout`, { method: 'POST', headers: { cookie } });
    assert.equal((await fetch(`${a}/api/gm/devices`, { headers: { cookie } })).status, 401);
  });
});
