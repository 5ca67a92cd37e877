import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { isKapokError } from '../../src/core/errors.js';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { sm2PublicKey } from '../../src/crypto/sm2.js';
import { Sm9EncMasterKey } from '../../src/crypto/sm9/keys.js';
import { authenticateDevice, authRequestBody, type DeviceCredentials } from '../../src/gm/client.js';
import type { Registration } from '../../src/gm/devices.js';
import { issueDeviceToken, verifyDeviceToken } from '../../src/gm/tokens.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';
import { rotationFlow } from './rotation-flow.js';

const KEK = '00112233445566778899aabbccddeeff';
const ADMIN = 'admin-token-for-tests-0001';
const FACTORY = 'factory-secret-for-tests';

function start(dataDir: string, gm: Record<string, unknown>, logs = captureLogs()): Promise<RunningApp> {
  const config = testConfig({
    dataDir,
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
    gm: { enabled: true, kek: KEK, adminToken: ADMIN, ...gm },
  });
  return startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
}

describe('gm devices: register → authenticate → token → revoke', () => {
  const dataDir = tmpDir('kapok-gm-dev-');
  const logs = captureLogs();
  let app: RunningApp;
  let base: string;
  let reg: Registration;
  let creds: DeviceCredentials;
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    // Error bodies have `error`; the tests read it only where the status says there is one.
    return {
      status: res.status,
      body: (await res.json()) as { error: { code: string } } & Record<string, unknown>,
    };
  };

  before(async () => {
    app = await start(
      dataDir,
      { keyWrap: 'pbkdf2', factorySecret: FACTORY, pbkdf2Iterations: 1000, verifyWorkers: 1 },
      logs,
    );
    base = `http://127.0.0.1:${app.port}`;
  });
  after(() => app?.stop());

  it('registration needs the admin token and a sane serial; duplicates are refused', async () => {
    assert.equal((await call('POST', '/api/gm/devices', { serial: 'SN-1' })).status, 401);
    assert.equal(
      (await call('POST', '/api/gm/devices', { serial: 'SN-1' }, 'wrong-token-xxxxxxxx')).status,
      401,
    );
    const bad = await call('POST', '/api/gm/devices', { serial: 'no spaces allowed' }, ADMIN);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'KAPOK_GM_INVALID_INPUT');
    // The vehicle id becomes an MQTT topic level (v2x/<vehicle>/…): wildcards, separators, other
    // types and oversized ids must never be bound.
    for (const vehicle of ['car/#', 'car+1', '#', '', 'x'.repeat(65), 42, ['car-1'], null]) {
      const r = await call('POST', '/api/gm/devices', { serial: 'SN-VEH', vehicle }, ADMIN);
      assert.equal(r.status, 400, `vehicle ${JSON.stringify(vehicle)}`);
      assert.equal(r.body.error.code, 'KAPOK_GM_INVALID_INPUT');
    }
    const ok = await call('POST', '/api/gm/devices', { serial: 'SN-1', group: 'meters' }, ADMIN);
    assert.equal(ok.status, 201);
    reg = ok.body as unknown as Registration;
    assert.equal(reg.signKey.scheme, 'pbkdf2-sm3+sm4-gcm');
    const dup = await call('POST', '/api/gm/devices', { serial: 'SN-1' }, ADMIN);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'KAPOK_GM_DEVICE_EXISTS');
    creds = {
      serial: 'SN-1',
      signKey: unwrapDeviceKey(reg.signKey, 'SN-1', { factorySecret: FACTORY }),
      signMasterPublicKey: fromHex(reg.signMasterPublicKey, 'master'),
    };
    assert.throws(() => unwrapDeviceKey(reg.signKey, 'SN-1', { factorySecret: 'another-factory-secret' }));
    const master = await call('GET', '/api/gm/master');
    assert.equal(master.body.signMasterPublicKey, reg.signMasterPublicKey);
    assert.equal(master.body.tokenAlg, 'SM2SM3');
  });

  it('the device authenticates and its token is accepted as an HTTP bearer token', async () => {
    const r = await authenticateDevice(base, creds);
    assert.equal(r.tokenType, 'Bearer');
    const [header] = r.token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(header as string, 'base64url').toString()), {
      alg: 'SM2SM3',
      typ: 'JWT',
      kid: 'token-1',
    });
    const me = await call('GET', '/api/gm/devices/me', undefined, r.token);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { serial: 'SN-1', group: 'meters', vehicle: 'SN-1', expiresAt: r.expiresAt });
  });

  it('refuses a replayed nonce, clock skew, a wrong signer, an unknown serial, a tampered token', async () => {
    const body = authRequestBody(creds);
    assert.equal((await call('POST', '/api/gm/devices/auth', body)).status, 200);
    const replay = await call('POST', '/api/gm/devices/auth', body);
    assert.equal(replay.body.error.code, 'KAPOK_GM_NONCE_REPLAYED');
    const skewed = await call(
      'POST',
      '/api/gm/devices/auth',
      authRequestBody(creds, Date.now() - 10 * 60_000),
    );
    assert.equal(skewed.body.error.code, 'KAPOK_GM_CLOCK_SKEW');
    const other = await call('POST', '/api/gm/devices', { serial: 'SN-2' }, ADMIN);
    const wrongSigner = { ...authRequestBody(creds), serial: 'SN-2' };
    assert.equal(other.status, 201);
    assert.equal(
      (await call('POST', '/api/gm/devices/auth', wrongSigner)).body.error.code,
      'KAPOK_GM_AUTH_FAILED',
    );
    const unknown = { ...authRequestBody(creds), serial: 'SN-404' };
    const u = await call('POST', '/api/gm/devices/auth', unknown);
    assert.equal(u.status, 401);
    assert.equal(u.body.error.code, 'KAPOK_GM_AUTH_FAILED');
    const garbled = await call('POST', '/api/gm/devices/auth', {
      ...authRequestBody(creds),
      signature: 'zz',
    });
    assert.equal(garbled.status, 400);
    assert.equal((await call('POST', '/api/gm/devices/auth', [1, 2])).status, 400);
    const { token } = await authenticateDevice(base, creds);
    const tampered = `${token.slice(0, -3)}${token.endsWith('A') ? 'B' : 'A'}AA`;
    assert.equal(
      (await call('GET', '/api/gm/devices/me', undefined, tampered)).body.error.code,
      'KAPOK_GM_TOKEN_INVALID',
    );
    assert.equal((await call('GET', '/api/gm/devices/me')).status, 401);
  });

  it('an expired token is refused', () => {
    const k = { priv: fromHex('11'.repeat(32), 'k', 32) };
    const pub = sm2PublicKey(k.priv);
    const { token } = issueDeviceToken(k.priv, pub, 'token-1', { sub: 'SN-1', grp: 'g' }, 60, 1_000_000);
    const keyFor = (kid: string) => (kid === 'token-1' ? pub : null);
    assert.equal(verifyDeviceToken(keyFor, token, 1_000_000 + 59_000).sub, 'SN-1');
    assert.throws(
      () => verifyDeviceToken(() => null, token, 1_000_000),
      (e: unknown) => isKapokError(e, 'KAPOK_GM_TOKEN_INVALID'),
    );
    assert.throws(
      () => verifyDeviceToken(keyFor, token, 1_000_000 + 60_000),
      (e: unknown) => isKapokError(e, 'KAPOK_GM_TOKEN_EXPIRED'),
    );
  });

  it('revoking refuses the device and its tokens at once', async () => {
    const { token } = await authenticateDevice(base, creds);
    assert.equal((await call('DELETE', '/api/gm/devices/SN-1')).status, 401);
    const rev = await call('DELETE', '/api/gm/devices/SN-1', undefined, ADMIN);
    assert.equal(rev.status, 200);
    assert.equal(rev.body.status, 'revoked');
    const me = await call('GET', '/api/gm/devices/me', undefined, token);
    assert.equal(me.status, 403);
    assert.equal(me.body.error.code, 'KAPOK_GM_DEVICE_REVOKED');
    const again = await call('POST', '/api/gm/devices/auth', authRequestBody(creds));
    assert.equal(again.body.error.code, 'KAPOK_GM_DEVICE_REVOKED');
    // An unknown serial: 404 KAPOK_GM_DEVICE_UNKNOWN, for revoke and reissue alike.
    for (const [method, path] of [
      ['DELETE', '/api/gm/devices/SN-999'],
      ['POST', '/api/gm/devices/SN-999/reissue'],
    ] as const) {
      const unknown = await call(method, path, undefined, ADMIN);
      assert.equal(unknown.status, 404, `${method} ${path}`);
      assert.equal(unknown.body.error.code, 'KAPOK_GM_DEVICE_UNKNOWN');
    }
  });

  it('counts authentications by result and reports readiness', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /kapok_gm_device_auth_total\{result="ok",region="guangzhou"\} [1-9]/);
    assert.match(text, /kapok_gm_device_auth_total\{result="KAPOK_GM_NONCE_REPLAYED",region="guangzhou"\} 1/);
    const ready = (await (await fetch(`${base}/readyz`)).json()) as {
      components: { name: string; state: string }[];
    };
    assert.equal(ready.components.find((c) => c.name === 'gm')?.state, 'ready');
  });

  it('refuses hostile auth bodies with 400 and loses nothing', async () => {
    const good = authRequestBody(creds);
    for (const body of [
      { ...good, nonce: 'x'.repeat(129) },
      { ...good, nonce: 'short' },
      { ...good, timestamp: 1.5 },
      { ...good, timestamp: '1' },
      { ...good, signature: 'ab'.repeat(600) },
      { ...good, serial: 'a'.repeat(65) },
      null,
    ]) {
      const r = await call('POST', '/api/gm/devices/auth', body);
      assert.equal(r.status, 400, JSON.stringify(body)?.slice(0, 60));
    }
  });

  it('never logs the KEK, the admin token or private keys', () => {
    const text = logs.text();
    assert.ok(text.includes('created KGC master keys'));
    for (const secret of [KEK, ADMIN, FACTORY, toHex(creds.signKey)])
      assert.equal(text.includes(secret), false);
  });

  it('keeps the master keys across restarts; another KEK cannot start', async () => {
    const dir = tmpDir('kapok-gm-keys-');
    const a = await start(dir, { verifyWorkers: 0 });
    const m1 = await (await fetch(`http://127.0.0.1:${a.port}/api/gm/master`)).json();
    await a.stop();
    const b = await start(dir, { verifyWorkers: 0 });
    const m2 = await (await fetch(`http://127.0.0.1:${b.port}/api/gm/master`)).json();
    await b.stop();
    assert.deepEqual(m2, m1);
    await assert.rejects(start(dir, { kek: 'ff'.repeat(16) }), (e: unknown) =>
      isKapokError(e, 'KAPOK_GM_KEK_MISMATCH'),
    );
  });

  it('kem wrapping: the serial holder of the SM9 encryption key unwraps its signing key', async () => {
    const dir = tmpDir('kapok-gm-kem-');
    const a = await start(dir, { verifyWorkers: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${a.port}/api/gm/devices`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ serial: 'K-1' }),
      });
      const r = (await res.json()) as Registration;
      assert.equal(r.signKey.scheme, 'sm9-kem+sm4-gcm');
      const { loadOrCreateMasterKeys } = await import('../../src/gm/keystore.js');
      const keys = await loadOrCreateMasterKeys(a.store, fromHex(KEK, 'kek'));
      const encKey = Sm9EncMasterKey.fromBytes(keys.enc.toBytes()).extract('K-1');
      const signKey = unwrapDeviceKey(r.signKey, 'K-1', { encKey });
      const base2 = `http://127.0.0.1:${a.port}`;
      const t = await authenticateDevice(base2, {
        serial: 'K-1',
        signKey,
        signMasterPublicKey: fromHex(r.signMasterPublicKey, 'm'),
      });
      assert.ok(t.token);
    } finally {
      await a.stop();
    }
  });
});

describe('gm key rotation with overlap (sqlite)', () => {
  it('token and sign keys rotate without cutting off devices; after the overlap, reissue', async () => {
    const { createSqliteStore } = await import('../../src/adapters/sqlite/store.js');
    const store = await createSqliteStore({ file: `${tmpDir('kapok-gm-rot-')}/k.db` });
    try {
      await rotationFlow(store);
    } finally {
      await store.close();
    }
  });
});
