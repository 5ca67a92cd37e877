import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { request } from 'undici';
import { type RunningApp, startApp } from '../../src/app.js';
import { kapok } from '../helpers/cli.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';
import { upgradeStatus } from '../helpers/ws.js';
import { makeRepository } from '../inference/setup.js';

/**
 * Role-scoped admin tokens (docs/configuration.md#admin-access) over real sockets, every capability
 * at once: viewer reads, operator also runs things, admin also manages keys; capability tokens stay
 * admin of their own capability only.
 */

const VIEWER = 'viewer-token-0123456789';
const OPERATOR = 'operator-token-0123456789';
const ADMIN = 'admin-token-0123456789ab';
const GM_OWN = 'gm-own-admin-token-0123';
const EDGE_OWN = 'edge-own-admin-token-0123';
const ZONE = {
  type: 'Polygon',
  coordinates: [
    [
      [113, 23],
      [113.1, 23],
      [113.1, 23.1],
      [113, 23],
    ],
  ],
};

describe('admin roles across every capability', () => {
  let app: RunningApp;
  let base: string;
  const logs = captureLogs();
  const dataDir = tmpDir('kapok-roles-'); // here, not in before(): tmpDir registers its own after()
  const repo = makeRepository();
  before(async () => {
    const config = testConfig({
      dataDir,
      http: { host: '127.0.0.1', port: 0 },
      grpc: { port: 0 },
      log: { level: 'info', requests: false },
      admin: {
        tokens: [
          { name: 'dashboard', role: 'viewer', token: VIEWER },
          { name: 'ops', role: 'operator', token: OPERATOR },
          { name: 'root', role: 'admin', token: ADMIN },
        ],
      },
      gateway: { enabled: true },
      gm: { enabled: true, kek: '00112233445566778899aabbccddeeff', verifyWorkers: 0, adminToken: GM_OWN },
      edge: { enabled: true, adminToken: EDGE_OWN, mqtt: { port: 0, host: '127.0.0.1' } },
      v2x: { enabled: true },
      inference: { enabled: true, repository: repo, pollIntervalMs: 0 },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
    base = `http://127.0.0.1:${app.port}`;
  });
  after(async () => {
    await app?.stop('test');
    rmSync(repo, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await request(`${base}${path}`, {
      method: method as 'GET',
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, code: String(res.headers['x-kapok-error'] ?? ''), text };
  };

  it('viewer reads every capability; no token or an unknown one is 401', async () => {
    for (const path of ['/api/gateway/keys', '/api/gateway/usage', '/api/edge/devices', '/api/v2x/zones']) {
      assert.equal((await call('GET', path, VIEWER)).status, 200, path);
      const none = await call('GET', path);
      assert.equal(none.status, 401, path);
      assert.match(none.text, /KAPOK_HTTP_UNAUTHORIZED/);
      assert.equal((await call('GET', path, `${VIEWER}x`)).status, 401, path);
    }
  });

  it('zones: viewer 403 naming the role (never the token), operator 201', async () => {
    const v = await call('PUT', '/api/v2x/zones/z1', VIEWER, ZONE);
    assert.equal(v.status, 403);
    assert.match(v.text, /KAPOK_HTTP_FORBIDDEN/);
    assert.match(v.text, /needs role operator/);
    assert.ok(!v.text.includes(VIEWER) && !v.text.includes('dashboard'), v.text);
    const put = await call('PUT', '/api/v2x/zones/z1', OPERATOR, ZONE);
    assert.equal(put.status, 201, put.text);
    assert.equal((await call('DELETE', '/api/v2x/zones/z1', OPERATOR)).status, 204);
  });

  it('gateway keys: operator 403, admin 201', async () => {
    const op = await call('POST', '/api/gateway/keys', OPERATOR, { name: 'k1' });
    assert.equal(op.status, 403);
    assert.match(op.text, /needs role admin/);
    assert.equal((await call('POST', '/api/gateway/keys', ADMIN, { name: 'k1' })).status, 201);
  });

  it('device register: viewer 403, operator 201, gm.adminToken (admin of gm) 201', async () => {
    assert.equal((await call('POST', '/api/gm/devices', VIEWER, { serial: 'SN-ROLE-0' })).status, 403);
    assert.equal((await call('POST', '/api/gm/devices', OPERATOR, { serial: 'SN-ROLE-1' })).status, 201);
    assert.equal((await call('DELETE', '/api/gm/devices/SN-ROLE-1', OPERATOR)).status, 200);
    assert.equal((await call('POST', '/api/gm/devices', GM_OWN, { serial: 'SN-ROLE-2' })).status, 201);
    // The public part of gm stays public.
    assert.equal((await call('GET', '/api/gm/master')).status, 200);
  });

  it("a capability's own token serves its capability only", async () => {
    assert.equal((await call('GET', '/api/edge/devices', EDGE_OWN)).status, 200);
    assert.equal((await call('GET', '/api/v2x/zones', EDGE_OWN)).status, 401);
    assert.equal((await call('POST', '/api/gm/devices', EDGE_OWN, { serial: 'SN-ROLE-3' })).status, 401);
    assert.equal((await call('GET', '/api/gateway/keys', GM_OWN)).status, 401);
  });

  it('model load over REST: viewer 403 (OIP shape), operator 200; inference stays open', async () => {
    const v = await call('POST', '/v2/repository/models/mlp/load', VIEWER, {});
    assert.equal(v.status, 403);
    assert.equal(v.code, 'KAPOK_HTTP_FORBIDDEN');
    assert.match(JSON.parse(v.text).error, /needs role operator/);
    assert.equal((await call('POST', '/v2/repository/models/mlp/load', OPERATOR, {})).status, 200);
    assert.equal((await call('GET', '/v2/models/mlp/ready')).status, 200);
  });

  it('model load over gRPC: viewer PERMISSION_DENIED, operator loads', async () => {
    const port = Number(logs.lines.find((l) => l.msg === 'inference gRPC listening')?.port);
    const PROTO = new URL('../../src/inference/protocol/grpc_predict_v2.proto', import.meta.url).pathname;
    // biome-ignore lint/suspicious/noExplicitAny: dynamic client from proto-loader
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true })) as any;
    const client = new pkg.inference.GRPCInferenceService(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    );
    const load = (token: string) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      return new Promise<unknown>((resolve, reject) =>
        client.RepositoryModelLoad({ model_name: 'conv' }, md, (err: Error | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        ),
      );
    };
    try {
      await assert.rejects(load(VIEWER), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
      assert.deepEqual(await load(OPERATOR), { model_name: 'conv', isLoaded: true });
    } finally {
      client.close();
    }
  });

  it('WebSocket streams: viewer 101, none or unknown 401, the old edge token 101', async () => {
    const ws = base.replace('http', 'ws');
    for (const path of [`/ws/telemetry?topic=${encodeURIComponent('#')}`, '/ws/v2x']) {
      assert.equal(await upgradeStatus(`${ws}${path}`, `Bearer ${VIEWER}`), 101, path);
      assert.equal(await upgradeStatus(`${ws}${path}`), 401, path);
      assert.equal(await upgradeStatus(`${ws}${path}`, 'Bearer not-a-known-token-000'), 401, path);
    }
    assert.equal(await upgradeStatus(`${ws}/ws/telemetry?topic=%23`, `Bearer ${EDGE_OWN}`), 101);
  });

  it('kapok models sends the least role that suffices, or the token named by --as', async () => {
    const env = {
      KAPOK_ADMIN__TOKENS: `[{name: dashboard, role: viewer, token: ${VIEWER}}, {name: ops, role: operator, token: ${OPERATOR}}, {name: root, role: admin, token: ${ADMIN}}]`,
    };
    const ok = await kapok(['models', 'unload', 'types', '--url', base], env);
    assert.equal(ok.code, 0, ok.stderr);
    const low = await kapok(['models', 'unload', 'types', '--url', base, '--as', 'dashboard'], env);
    assert.equal(low.code, 1);
    assert.match(low.stderr, /KAPOK_HTTP_FORBIDDEN/);
    assert.ok(!low.stderr.includes(VIEWER));
  });

  it('logs each admin act with the token name, never a token, and no read', () => {
    const acts = logs.lines.filter((l) => l.msg === 'admin act');
    const seen = acts.map((l) => `${l.admin} ${l.act}`);
    assert.ok(seen.includes('root POST /api/gateway/keys'), seen.join('\n'));
    assert.ok(seen.includes('ops PUT /api/v2x/zones/z1'), seen.join('\n'));
    assert.ok(seen.includes('gm.adminToken POST /api/gm/devices'), seen.join('\n'));
    assert.ok(seen.includes('ops POST /v2/repository/models/mlp/load'), seen.join('\n'));
    assert.ok(seen.includes('ops load conv'), seen.join('\n'));
    assert.ok(seen.includes('ops POST /v2/repository/models/types/unload'), seen.join('\n'));
    assert.ok(!acts.some((l) => String(l.act).startsWith('GET')));
    const text = logs.text();
    for (const t of [VIEWER, OPERATOR, ADMIN, GM_OWN, EDGE_OWN]) assert.ok(!text.includes(t));
  });
});
