import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import smCrypto from 'sm-crypto';
import { SM2_CURVE, sm2Domain, sm2GenerateKeyPair, sm2Sign, sm2Verify, sm2Z } from '../../src/crypto/sm2.js';
import { toHex } from './vectors.js';

// sm2Z caches Z per (public key, ID): a hit must give exactly what a fresh computation gives.
describe('SM2 Z cache', () => {
  const kp = sm2GenerateKeyPair();
  const fresh = sm2Domain(SM2_CURVE); // another domain object: never cached

  it('a cached Z equals a fresh one, for a string ID and for the same ID as bytes', () => {
    const want = toHex(sm2Z(kp.publicKey, 'device-7', fresh));
    assert.equal(toHex(sm2Z(kp.publicKey, 'device-7')), want);
    assert.equal(toHex(sm2Z(kp.publicKey, 'device-7')), want);
    assert.equal(toHex(sm2Z(kp.publicKey, new TextEncoder().encode('device-7'))), want);
  });

  it('an ID string that spells the hex of another byte ID does not share its entry', () => {
    const bytesId = Uint8Array.of(0xab, 0xcd);
    const a = toHex(sm2Z(kp.publicKey, bytesId));
    const b = toHex(sm2Z(kp.publicKey, 'abcd'));
    assert.notEqual(a, b);
    assert.equal(a, toHex(sm2Z(kp.publicKey, bytesId, fresh)));
    assert.equal(b, toHex(sm2Z(kp.publicKey, 'abcd', fresh)));
  });

  it('changing a returned Z does not change the next one; signatures still verify elsewhere', () => {
    const z = sm2Z(kp.publicKey);
    const copy = toHex(z);
    z.fill(0);
    assert.equal(toHex(sm2Z(kp.publicKey)), copy);
    for (let i = 0; i < 3; i++) {
      const sig = sm2Sign(kp.privateKey, `m${i}`, { format: 'raw', publicKey: kp.publicKey });
      assert.ok(sm2Verify(kp.publicKey, `m${i}`, sig, { format: 'raw' }));
      assert.ok(smCrypto.sm2.doVerifySignature(`m${i}`, toHex(sig), toHex(kp.publicKey), { hash: true }));
    }
  });
});
