import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryKV } from '../../src/adapters/memory/kv.js';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { isKapokError, type KapokError } from '../../src/core/errors.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { Sm9SignMasterPublicKey } from '../../src/crypto/sm9/keys.js';
import { sm9Verify } from '../../src/crypto/sm9/sign.js';
import { DeviceAuthenticator } from '../../src/gm/auth.js';
import { authRequestBody, type DeviceCredentials } from '../../src/gm/client.js';
import { DeviceRegistry, type Registration } from '../../src/gm/devices.js';
import { Keyring } from '../../src/gm/keystore.js';
import { GM_MIGRATIONS } from '../../src/gm/migrations.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { tmpDir } from '../helpers/tmp.js';

const KEK = fromHex('00112233445566778899aabbccddeeff', 'kek');
const FACTORY = 'factory-secret-for-tests';

describe('gm auth: serials cannot be enumerated', () => {
  it('unknown and revoked serials get the same answer and one verification each until a signature verifies', async () => {
    const store = await createSqliteStore({ file: `${tmpDir('kapok-gm-enum-')}/k.db` });
    const kv = await createMemoryKV({ maxKeys: 1000 });
    try {
      await store.migrate(GM_MIGRATIONS);
      const keyring = await Keyring.open(store, KEK, undefined, 0);
      const registry = new DeviceRegistry(store, keyring, {
        keyWrap: 'pbkdf2',
        factorySecret: FACTORY,
        pbkdf2Iterations: 1000,
      });
      const verified: string[] = [];
      const auth = new DeviceAuthenticator({
        registry,
        kv,
        keys: keyring,
        tokenTtlSeconds: 900,
        authWindowSeconds: 120,
        rotationOverlapSeconds: 3600,
        verify: async (job) => {
          verified.push(String(job.id));
          const master = Sm9SignMasterPublicKey.fromBytes(job.masterPublicKey);
          return sm9Verify(master, job.id, job.message, job.signature);
        },
      });
      const credsOf = (r: Registration): DeviceCredentials => ({
        serial: r.serial,
        signKey: unwrapDeviceKey(r.signKey, r.serial, { factorySecret: FACTORY }),
        signMasterPublicKey: fromHex(r.signMasterPublicKey, 'm'),
      });
      const mine = credsOf(await registry.register('E-1'));
      const revoked = credsOf(await registry.register('E-2'));
      await registry.revoke('E-2');
      // An attacker signs with the one key it holds, naming other serials.
      const refusal = async (serial: string) => {
        const err = (await auth.authenticate(authRequestBody({ ...mine, serial })).then(
          () => assert.fail(`${serial} authenticated`),
          (e: unknown) => e,
        )) as KapokError;
        assert.ok(isKapokError(err), String(err));
        return { code: err.code, status: err.status, message: err.message };
      };
      const unknown = await refusal('E-404');
      assert.deepEqual(await refusal('E-2'), unknown, 'a revoked serial answers as an unknown one');
      assert.deepEqual(unknown, {
        code: 'KAPOK_GM_AUTH_FAILED',
        status: 401,
        message: 'device authentication failed',
      });
      assert.deepEqual(verified, ['E-404', 'E-2'], 'both cost one SM9 verification');
      // The revoked device itself, proving its key, is told why.
      await assert.rejects(auth.authenticate(authRequestBody(revoked)), (e: unknown) =>
        isKapokError(e, 'KAPOK_GM_DEVICE_REVOKED'),
      );
      assert.equal((await auth.authenticate(authRequestBody(mine))).serial, 'E-1');
    } finally {
      await kv.close();
      await store.close();
    }
  });
});
