import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { adminActRecord } from '../../src/audit/actions.js';
import { verifyStore } from '../../src/audit/reader.js';
import { loadKapokConfig } from '../../src/config.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

/**
 * HTTP admin acts reach the audit trail through the one admin guard (docs/audit.md#actions): the
 * actor is the token's name, the outcome follows the answer's status, a refusal is admin.auth.denied;
 * start and stop are recorded; /api/audit reads (viewer) and nobody writes through HTTP.
 */

const KEK = '00112233445566778899aabbccddeeff';
const OPERATOR = 'operator-token-0000001';
const VIEWER = 'viewer-token-00000001';
const ADMIN = 'admin-token-000000001';

async function start(dataDir: string): Promise<RunningApp> {
  const yaml = [
    `dataDir: ${dataDir}`,
    'http: { host: 127.0.0.1, port: 0 }',
    'log: { level: warn }',
    'admin:',
    '  tokens:',
    `    - { name: ops-alice, role: operator, token: ${OPERATOR} }`,
    `    - { name: view-bob, role: viewer, token: ${VIEWER} }`,
    `    - { name: root-carol, role: admin, token: ${ADMIN} }`,
    `gm: { enabled: true, kek: "${KEK}", verifyWorkers: 0 }`,
    'gateway: { enabled: true }',
    `audit: { enabled: true, kek: "${KEK}" }`,
    ...offYaml('gm', 'gateway'),
  ].join('\n');
  const loaded = loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: tmpDir() });
  return startApp(loaded, { logDestination: captureLogs() });
}

type Row = {
  seq: number;
  actor: string;
  action: string;
  outcome: string;
  target: string | null;
  ip: string | null;
  request_id: string | null;
};

describe('audit: HTTP admin acts', () => {
  it('records acts with token name, action, target and outcome; refusals as admin.auth.denied; start and stop', async () => {
    const dataDir = tmpDir('kapok-audit-http-');
    const app = await start(dataDir);
    const base = `http://127.0.0.1:${app.port}`;
    const call = (method: string, path: string, token?: string, body?: unknown) =>
      fetch(`${base}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    let keyId: string;
    try {
      assert.equal((await call('POST', '/api/gm/devices', OPERATOR, { serial: 'dev-1' })).status, 201);
      assert.equal((await call('DELETE', '/api/gm/devices/nope', OPERATOR)).status, 404);
      assert.equal((await call('DELETE', '/api/gm/devices/dev-1')).status, 401);
      assert.equal((await call('POST', '/api/gateway/keys', VIEWER, { name: 'team-a' })).status, 403);
      const created = await call('POST', '/api/gateway/keys', ADMIN, { name: 'team-a' });
      assert.equal(created.status, 201);
      keyId = ((await created.json()) as { id: string }).id;
      assert.equal((await call('DELETE', `/api/gateway/keys/${keyId}`, ADMIN)).status, 200);

      // Reading: viewer yes, anonymous no; nothing writes.
      const list = await call('GET', '/api/audit?action=gm.device.register', VIEWER);
      assert.equal(list.status, 200);
      const page = (await list.json()) as { entries: Array<{ actor: string; target: string }> };
      assert.deepEqual(
        page.entries.map((e) => [e.actor, e.target]),
        [['ops-alice', 'dev-1']],
      );
      assert.equal((await call('GET', '/api/audit')).status, 401);
      assert.equal((await call('POST', '/api/audit', ADMIN, { actor: 'x' })).status, 404);
      assert.equal((await call('DELETE', '/api/audit', ADMIN)).status, 404);
      const pk = (await (await call('GET', '/api/audit/public-key')).json()) as {
        keys: Array<{ publicKey: string }>;
        sm2Id: string;
      };
      assert.match(pk.keys[0]?.publicKey ?? '', /^04[0-9a-f]{128}$/);
      assert.equal(pk.sm2Id, '1234567812345678');
    } finally {
      await app.stop();
    }

    const store = await createSqliteStore({ file: `${dataDir}/kapok.db` });
    try {
      const rows = await store.query<Row>('SELECT * FROM audit_log ORDER BY seq');
      const got = rows.map((r) => [r.actor, r.action, r.outcome, r.target]);
      assert.deepEqual(got, [
        ['system', 'kapok.start', 'ok', 'audit,gm,gateway'],
        ['ops-alice', 'gm.device.register', 'ok', 'dev-1'],
        ['ops-alice', 'gm.device.revoke', 'failed', 'nope'],
        ['unauthenticated', 'admin.auth.denied', 'denied', 'gm:gm.device.revoke'],
        ['unauthenticated', 'admin.auth.denied', 'denied', 'gateway:gateway.key.create'],
        ['root-carol', 'gateway.key.create', 'ok', 'team-a'],
        ['root-carol', 'gateway.key.revoke', 'ok', keyId],
        // The refused GET /api/audit: a denial on a read surface is recorded too.
        ['unauthenticated', 'admin.auth.denied', 'denied', 'audit:GET /'],
        ['system', 'kapok.stop', 'ok', 'stop'],
      ]);
      assert.ok(
        rows.slice(1, -1).every((r) => r.ip === '127.0.0.1' && r.request_id),
        'ip and request id on HTTP acts',
      );
      const text = JSON.stringify(rows);
      for (const secret of [OPERATOR, VIEWER, ADMIN, KEK])
        assert.ok(!text.includes(secret), 'no secret in the trail');
      const v = await verifyStore(store);
      assert.equal(v.ok, true, JSON.stringify(v.problem));
      assert.equal(v.unsigned, 0, 'the stop signs a last checkpoint');
    } finally {
      await store.close();
    }
  });

  it('names the acts of v2x zones and model control (REST) like the others', () => {
    const ev = (scope: string, route: string, params: Record<string, string>, status = 200) => ({
      scope,
      actor: 'ops',
      method: route.split(' ')[0] as string,
      route,
      params,
      ip: '10.0.0.1',
      status,
      denied: null,
      requestId: 'r1',
    });
    assert.equal(adminActRecord(ev('v2x.adminToken', 'PUT /zones/:id', { id: 'z1' })).action, 'v2x.zone.put');
    assert.equal(adminActRecord(ev('v2x.adminToken', 'DELETE /zones/:id', { id: 'z1' })).target, 'z1');
    const load = adminActRecord(
      ev('inference.adminToken', 'POST /repository/models/:model/load', { model: 'm' }, 500),
    );
    assert.deepEqual([load.action, load.target, load.outcome], ['inference.model.load', 'm', 'failed']);
    assert.equal(
      adminActRecord(ev('inference.adminToken', 'POST /repository/models/:model/unload', { model: 'm' }))
        .action,
      'inference.model.unload',
    );
  });
});

describe('audit: GET /api/audit paging and bad input', () => {
  it('pages with a cursor; refuses a limit or range over the maximum and malformed parameters', async () => {
    const dataDir = tmpDir('kapok-audit-q-');
    const app = await start(dataDir);
    const get = (q: string) =>
      fetch(`http://127.0.0.1:${app.port}/api/audit${q}`, { headers: { authorization: `Bearer ${VIEWER}` } });
    try {
      for (let i = 0; i < 5; i++)
        await fetch(`http://127.0.0.1:${app.port}/api/gm/devices`, {
          method: 'POST',
          headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
          body: JSON.stringify({ serial: `d-${i}` }),
        });
      const seen: number[] = [];
      let cursor: string | null = '';
      while (cursor !== null) {
        const r = await get(`?actor=ops-alice&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.status, 200);
        const p = (await r.json()) as { entries: Array<{ seq: number }>; next: string | null };
        seen.push(...p.entries.map((e) => e.seq));
        cursor = p.next;
      }
      assert.equal(seen.length, 5);
      assert.deepEqual(
        seen,
        [...seen].sort((a, b) => a - b),
      );
      const desc = (await (await get('?order=desc&limit=1')).json()) as { entries: Array<{ seq: number }> };
      assert.equal(desc.entries[0]?.seq, Math.max(...seen));

      const code = async (q: string) => {
        const r = await get(q);
        return [r.status, ((await r.json()) as { error: { code: string } }).error.code];
      };
      assert.deepEqual(await code('?limit=5000'), [400, 'KAPOK_AUDIT_RANGE_TOO_LARGE']);
      assert.deepEqual(await code('?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z'), [
        400,
        'KAPOK_AUDIT_RANGE_TOO_LARGE',
      ]);
      assert.deepEqual(await code('?from=yesterday'), [400, 'KAPOK_AUDIT_BAD_QUERY']);
      assert.deepEqual(await code('?limit=-1'), [400, 'KAPOK_AUDIT_BAD_QUERY']);
      assert.deepEqual(await code('?cursor=garbage'), [400, 'KAPOK_AUDIT_BAD_QUERY']);
      assert.deepEqual(await code('?order=sideways'), [400, 'KAPOK_AUDIT_BAD_QUERY']);
      assert.deepEqual(await code('?seq=1'), [400, 'KAPOK_AUDIT_BAD_QUERY']);
      assert.deepEqual(await code('?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z'), [
        400,
        'KAPOK_AUDIT_BAD_QUERY',
      ]);
      const ok = await get(`?from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${Date.now()}`);
      assert.equal(ok.status, 200);
    } finally {
      await app.stop();
    }
  });
});
