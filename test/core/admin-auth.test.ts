import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { request } from 'undici';
import { type RunningApp, startApp } from '../../src/app.js';
import type { KapokError } from '../../src/core/errors.js';
import { createAdminGuard, grpcPeer, hashAdminTokens, isLoopback } from '../../src/core/http/admin-auth.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * One admin rule for every capability (docs/configuration.md#admin-access): token → bearer for all;
 * no token → loopback only under profile default, no one under gov. Checked on the guard, then over
 * real sockets against every capability's admin door from a non-loopback address of this machine.
 */

const codeOf = (fn: () => void): string | null => {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as KapokError).code;
  }
};

describe('admin guard rule', () => {
  const local = { remoteAddress: '127.0.0.1', forwarded: false };
  const remote = { remoteAddress: '192.0.2.10', forwarded: false };

  it('knows loopback addresses, v4, v6 and v4-mapped; nothing else', () => {
    for (const a of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
    for (const a of [
      '10.0.0.1',
      '::ffff:10.0.0.1',
      '0.0.0.0',
      '::',
      'fe80::1',
      '',
      undefined,
      '127.0.0.1.evil',
    ])
      assert.ok(!isLoopback(a), String(a));
  });

  it('no token, profile default: loopback served, others 403, proxied requests never loopback', () => {
    const g = createAdminGuard({ token: null, gov: false, key: 'edge.adminToken', what: 'the edge API' });
    assert.equal(
      codeOf(() => g.check(undefined, local, 'admin')),
      null,
    );
    assert.equal(
      codeOf(() => g.check(undefined, remote, 'admin')),
      'KAPOK_HTTP_ADMIN_DISABLED',
    );
    assert.equal(
      codeOf(() => g.check(undefined, { ...local, forwarded: true }, 'admin')),
      'KAPOK_HTTP_ADMIN_DISABLED',
    );
    try {
      g.check(undefined, remote, 'admin');
    } catch (err) {
      assert.match((err as Error).message, /edge\.adminToken is set \(KAPOK_EDGE__ADMIN_TOKEN\)/);
    }
  });

  it('no token, profile gov: no one, loopback included', () => {
    const g = createAdminGuard({ token: null, gov: true, key: 'gm.adminToken', what: 'the gm admin API' });
    assert.equal(
      codeOf(() => g.check(undefined, local, 'admin')),
      'KAPOK_HTTP_ADMIN_DISABLED',
    );
  });

  it('a token: the bearer is required from loopback too; wrong, missing or malformed are 401', () => {
    const token = 'a-token-of-16-chars!';
    const g = createAdminGuard({ token, gov: false, key: 'v2x.adminToken', what: 'the v2x API' });
    assert.equal(
      codeOf(() => g.check(`Bearer ${token}`, remote, 'admin')),
      null,
    );
    assert.equal(
      codeOf(() => g.check(`bearer ${token}`, remote, 'admin')),
      null,
    );
    for (const h of [undefined, '', 'Bearer', `Bearer ${token}x`, `Basic ${token}`, `Bearer ${token} extra`])
      assert.equal(
        codeOf(() => g.check(h, local, 'admin')),
        'KAPOK_HTTP_UNAUTHORIZED',
        String(h),
      );
  });

  it('logs the loopback-only notice once at creation, never under gov or with a token', () => {
    const warned: string[] = [];
    const logger = { warn: (_o: unknown, msg: string) => warned.push(msg) } as never;
    createAdminGuard({ token: null, gov: false, key: 'gm.adminToken', what: 'the gm admin API', logger });
    createAdminGuard({ token: null, gov: true, key: 'gm.adminToken', what: 'the gm admin API', logger });
    createAdminGuard({ token: 'x'.repeat(16), gov: false, key: 'gm.adminToken', what: 'x', logger });
    assert.equal(warned.length, 1);
    assert.match(warned[0] as string, /loopback clients only: set gm\.adminToken \(KAPOK_GM__ADMIN_TOKEN\)/);
    // The console's own key is admin.tokens: named once, not "admin.tokens … or admin.tokens".
    createAdminGuard({ token: null, gov: false, key: 'admin.tokens', what: 'the console', logger });
    assert.equal(
      warned[1],
      'the console answers loopback clients only: set admin.tokens (KAPOK_ADMIN__TOKENS) to reach it from other hosts',
    );
  });

  it('reads gRPC peers; a unix socket is local', () => {
    assert.equal(grpcPeer('ipv4:127.0.0.1:5000').remoteAddress, '127.0.0.1');
    assert.equal(grpcPeer('ipv6:[::1]:5000').remoteAddress, '::1');
    assert.equal(grpcPeer('ipv4:10.1.2.3:5000').remoteAddress, '10.1.2.3');
    assert.ok(isLoopback(grpcPeer('unix:/tmp/s').remoteAddress));
    assert.equal(grpcPeer('127.0.0.1:5000').remoteAddress, '127.0.0.1');
    assert.equal(grpcPeer('::1:5000').remoteAddress, '::1');
    assert.equal(grpcPeer('::ffff:127.0.0.1:5000').remoteAddress, '::ffff:127.0.0.1');
    assert.ok(!isLoopback(grpcPeer('10.0.0.7:5000').remoteAddress));
    assert.equal(grpcPeer('garbage').remoteAddress, undefined);
  });
});

describe('admin guard roles', () => {
  const remote = { remoteAddress: '192.0.2.10', forwarded: false };
  const local = { remoteAddress: '127.0.0.1', forwarded: false };
  const tokens = hashAdminTokens([
    { name: 'dash', role: 'viewer', token: 'viewer-token-000000' },
    { name: 'ops', role: 'operator', token: 'operator-token-0000' },
    { name: 'root', role: 'admin', token: 'admin-token-0000000' },
  ]);
  const own = 'edge-own-token-00000';
  const g = createAdminGuard({
    token: own,
    tokens,
    gov: false,
    key: 'edge.adminToken',
    what: 'the edge API',
  });
  const errorOf = (fn: () => void) => {
    try {
      fn();
      return null;
    } catch (err) {
      return err as KapokError;
    }
  };

  it('keeps digests only: no configured secret is held by the hashed list', () => {
    assert.ok(!JSON.stringify(tokens).includes('viewer-token'));
    assert.deepEqual(
      tokens.map((t) => [t.name, t.role, t.digest.length]),
      [
        ['dash', 'viewer', 32],
        ['ops', 'operator', 32],
        ['root', 'admin', 32],
      ],
    );
  });

  it('each role is served up to its rank and refused above it with 403 KAPOK_HTTP_FORBIDDEN', () => {
    const cases: Array<[string, 'viewer' | 'operator' | 'admin', string | null]> = [
      ['viewer-token-000000', 'viewer', null],
      ['viewer-token-000000', 'operator', 'KAPOK_HTTP_FORBIDDEN'],
      ['operator-token-0000', 'operator', null],
      ['operator-token-0000', 'admin', 'KAPOK_HTTP_FORBIDDEN'],
      ['admin-token-0000000', 'admin', null],
      [own, 'admin', null],
    ];
    for (const [token, need, code] of cases)
      assert.equal(
        errorOf(() => g.check(`Bearer ${token}`, remote, need))?.code ?? null,
        code,
        `${token} ${need}`,
      );
    assert.deepEqual(g.check('Bearer operator-token-0000', remote, 'viewer'), tokens[1]);
    assert.equal(g.check(`Bearer ${own}`, remote, 'admin').name, 'edge.adminToken');
  });

  it('a forbidden answer names the role needed, never the token or its name', () => {
    const e = errorOf(() => g.check('Bearer viewer-token-000000', remote, 'admin')) as KapokError;
    assert.equal(e.status, 403);
    assert.match(e.message, /needs role admin or higher; the token sent has role viewer/);
    assert.ok(!e.message.includes('viewer-token') && !e.message.includes('dash'));
  });

  it('with any token configured, loopback needs one too; unknown is 401 naming admin.tokens', () => {
    const e = errorOf(() => g.check(undefined, local, 'viewer')) as KapokError;
    assert.equal(e.code, 'KAPOK_HTTP_UNAUTHORIZED');
    assert.match(e.message, /Bearer <a token of admin\.tokens or edge\.adminToken>/);
    assert.equal(
      errorOf(() => g.check('Bearer viewer-token-0000001', local, 'viewer'))?.code,
      'KAPOK_HTTP_UNAUTHORIZED',
    );
  });

  it('role tokens alone open a gov admin API (no capability token needed)', () => {
    const gov = createAdminGuard({
      token: null,
      tokens,
      gov: true,
      key: 'gm.adminToken',
      what: 'the gm admin API',
    });
    assert.equal(gov.check('Bearer operator-token-0000', remote, 'operator').name, 'ops');
  });

  it('no token at all: a loopback client acts as admin (profile default)', () => {
    const open = createAdminGuard({ token: null, tokens: [], gov: false, key: 'v2x.adminToken', what: 'x' });
    assert.deepEqual(open.check(undefined, local, 'admin'), { name: 'loopback', role: 'admin' });
  });

  it('hook: each route gets its role; a route missing from the map fails the start', async () => {
    const app = Fastify();
    await app.register(
      async (scope) => {
        g.hook(scope, { 'GET /r': 'viewer', 'POST /w': 'operator', 'GET /open': 'public' });
        scope.get('/r', async () => 'r');
        scope.post('/w', async () => 'w');
        scope.get('/open', async () => 'open');
      },
      { prefix: '/api' },
    );
    const as = (token?: string) => (token ? { authorization: `Bearer ${token}` } : {});
    const status = async (method: 'GET' | 'POST' | 'HEAD', url: string, token?: string) =>
      (await app.inject({ method, url, headers: as(token) })).statusCode;
    assert.equal(await status('GET', '/api/r', 'viewer-token-000000'), 200);
    assert.equal(await status('HEAD', '/api/r'), 401);
    assert.equal(await status('POST', '/api/w', 'viewer-token-000000'), 403);
    assert.equal(await status('POST', '/api/w', 'operator-token-0000'), 200);
    assert.equal(await status('GET', '/api/open'), 200);
    await app.close();

    const bad = Fastify();
    bad.register(async (scope) => {
      g.hook(scope, { 'GET /r': 'viewer' });
      scope.delete('/r', async () => 'gone');
    });
    await assert.rejects(async () => {
      await bad.ready();
    }, /DELETE \/r declares no admin role/);
    await bad.close();
  });

  it('upgrade: a known token with too low a role is answered 403 and the socket ended', async () => {
    let written = '';
    const socket = {
      end: (s: string) => (written = s),
      on: () => socket,
      off: () => socket,
      destroyed: false,
    } as never;
    const req = { headers: { authorization: 'Bearer viewer-token-000000' }, socket: remote } as never;
    assert.equal(await g.upgrade(req, socket, 'admin'), false);
    assert.match(written, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(written, /KAPOK_HTTP_FORBIDDEN/);
    assert.equal(await g.upgrade(req, socket), true);
  });

  it('upgrade: a session Store that fails is answered 503 KAPOK_STORE_UNAVAILABLE, naming no internals', async () => {
    const failing = createAdminGuard({
      token: null,
      tokens: [],
      gov: false,
      key: 'console.adminToken',
      what: 'the console',
      sessions: {
        resolve: async () => {
          throw new Error('SQLITE_BUSY: database is locked at /var/lib/kapok/kapok.db');
        },
      } as never,
    });
    let written = '';
    const socket = {
      end: (s: string) => (written = s),
      on: () => socket,
      off: () => socket,
      destroyed: false,
    } as never;
    const req = { headers: { cookie: 'kapok_session=x' }, socket: remote, url: '/ws/console' } as never;
    assert.equal(await failing.upgrade(req, socket), false);
    assert.match(written, /^HTTP\/1\.1 503 Service Unavailable/);
    assert.match(written, /KAPOK_STORE_UNAVAILABLE/);
    assert.doesNotMatch(written, /SQLITE_BUSY|kapok\.db/);
  });
});

/** A non-internal IPv4 address of this machine: connecting to it from here is not loopback. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

describe('every capability admin door, no tokens, profile default', () => {
  const address = externalAddress();
  let app: RunningApp;
  const logs = captureLogs();
  before(async () => {
    const config = testConfig({
      dataDir: tmpDir('kapok-admin-'),
      http: { host: '0.0.0.0', port: 0 },
      grpc: { port: 0 },
      log: { level: 'info', requests: false },
      gateway: { enabled: true },
      gm: { enabled: true, kek: '00112233445566778899aabbccddeeff', verifyWorkers: 0 },
      edge: { enabled: true, mqtt: { port: 0, host: '127.0.0.1' } },
      v2x: { enabled: true },
      inference: { enabled: true, repository: tmpDir('kapok-models-') },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
  });
  after(() => app?.stop('test'));

  const doors: Array<[string, string, object?]> = [
    ['GET', '/api/gateway/keys'],
    ['POST', '/api/gm/devices', { serial: 'SN-ADMIN-1' }],
    ['GET', '/api/edge/devices'],
    ['GET', '/api/v2x/zones'],
    ['POST', '/v2/repository/models/none/load', {}],
  ];

  it('each answers 403 KAPOK_HTTP_ADMIN_DISABLED to a non-loopback client', {
    skip: !address && 'this machine has no non-loopback IPv4 address',
  }, async () => {
    for (const [method, path, body] of doors) {
      const res = await request(`http://${address}:${app.port}${path}`, {
        method: method as 'GET',
        ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      });
      const text = await res.body.text();
      assert.equal(res.statusCode, 403, `${method} ${path}: ${text}`);
      // OIP's error shape (/v2) is {"error": "<message>"}: no code field on the wire.
      if (path.startsWith('/v2')) assert.match(text, /inference\.adminToken is set/);
      else assert.match(text, /KAPOK_HTTP_ADMIN_DISABLED/, `${method} ${path}`);
    }
  });

  it('each serves a loopback client (no 401/403)', async () => {
    for (const [method, path, body] of doors) {
      const res = await request(`http://127.0.0.1:${app.port}${path}`, {
        method: method as 'GET',
        ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      });
      const text = await res.body.text();
      assert.ok(
        res.statusCode !== 401 && res.statusCode !== 403,
        `${method} ${path}: ${res.statusCode} ${text}`,
      );
    }
  });

  it('a loopback request that says it was forwarded is refused', async () => {
    const res = await request(`http://127.0.0.1:${app.port}/api/gateway/keys`, {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(res.statusCode, 403);
    await res.body.dump();
  });

  it('the start warned once per capability, naming each key', () => {
    const notices = logs.lines.filter((l) => /answers loopback clients only/.test(String(l.msg)));
    const keys = notices.map((l) => l.key).sort();
    assert.deepEqual(keys, [
      'edge.adminToken',
      'gateway.auth.adminToken',
      'gm.adminToken',
      'inference.adminToken',
      'v2x.adminToken',
    ]);
  });
});
