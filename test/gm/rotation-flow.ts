import assert from 'node:assert/strict';
import { createMemoryKV } from '../../src/adapters/memory/kv.js';
import { isKapokError } from '../../src/core/errors.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { DeviceAuthenticator } from '../../src/gm/auth.js';
import { authRequestBody, type DeviceCredentials } from '../../src/gm/client.js';
import { DeviceRegistry, type Registration } from '../../src/gm/devices.js';
import { Keyring, rotateMasterKey } from '../../src/gm/keystore.js';
import { GM_MIGRATIONS } from '../../src/gm/migrations.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import type { Store } from '../../src/ports/store.js';

const KEK = fromHex('00112233445566778899aabbccddeeff', 'kek');
const FACTORY = 'factory-secret-for-tests';

/**
 * The key-rotation story on any Store (run on SQLite by devices.test.ts and on PostgreSQL by
 * devices-postgres.int.test.ts): a token rotation keeps old tokens valid; a sign rotation keeps old
 * devices working for the overlap, then asks for a reissue.
 */
export async function rotationFlow(store: Store): Promise<void> {
  const kv = await createMemoryKV({ maxKeys: 1000 });
  try {
    await store.migrate(GM_MIGRATIONS);
    const keyring = await Keyring.open(store, KEK, undefined, 0); // maxAge 0: sees every rotation
    const registry = new DeviceRegistry(store, keyring, {
      keyWrap: 'pbkdf2',
      factorySecret: FACTORY,
      pbkdf2Iterations: 1000,
    });
    let now = Date.now();
    const auth = new DeviceAuthenticator({
      registry,
      kv,
      keys: keyring,
      tokenTtlSeconds: 900,
      authWindowSeconds: 120,
      rotationOverlapSeconds: 3600,
      now: () => now,
    });
    const credsOf = (r: Registration): DeviceCredentials => ({
      serial: r.serial,
      signKey: unwrapDeviceKey(r.signKey, r.serial, { factorySecret: FACTORY }),
      signMasterPublicKey: fromHex(r.signMasterPublicKey, 'm'),
    });
    const kid = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid as string;

    const r1 = await registry.register('R-1');
    assert.equal(r1.signKeyId, 'sign-1');
    const c1 = credsOf(r1);
    const t1 = (await auth.authenticate(authRequestBody(c1, now))).token;
    assert.equal(kid(t1), 'token-1');

    assert.equal(await rotateMasterKey(store, KEK, 'token'), 'token-2');
    assert.equal((await auth.verifyToken(t1)).sub, 'R-1');
    const t2 = (await auth.authenticate(authRequestBody(c1, now))).token;
    assert.equal(kid(t2), 'token-2');

    assert.equal(await rotateMasterKey(store, KEK, 'sign'), 'sign-2');
    await auth.authenticate(authRequestBody(c1, now)); // old device key, inside the overlap
    const r2 = await registry.register('R-2');
    assert.equal(r2.signKeyId, 'sign-2');
    assert.notEqual(r2.signMasterPublicKey, r1.signMasterPublicKey);
    await auth.authenticate(authRequestBody(credsOf(r2), now));

    // Past the overlap as counted from the rotation's real time (retired_at is the store's clock):
    // `now += 3601 s` left 1 s for everything since `now` was read, which a loaded box overran.
    now = Date.now() + 3_660_000;
    await assert.rejects(auth.authenticate(authRequestBody(c1, now)), (e: unknown) =>
      isKapokError(e, 'KAPOK_GM_KEY_RETIRED'),
    );
    const again = await registry.reissue('R-1');
    assert.equal(again.signKeyId, 'sign-2');
    assert.equal((await auth.authenticate(authRequestBody(credsOf(again), now))).serial, 'R-1');
    await assert.rejects(auth.verifyToken(t1), (e: unknown) => isKapokError(e, 'KAPOK_GM_TOKEN_EXPIRED'));
    await registry.revoke('R-2');
    await assert.rejects(auth.authenticate(authRequestBody(credsOf(r2), now)), (e: unknown) =>
      isKapokError(e, 'KAPOK_GM_DEVICE_REVOKED'),
    );
  } finally {
    await kv.close();
  }
}
