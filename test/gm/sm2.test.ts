import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import smCrypto from 'sm-crypto';
import { isKapokError } from '../../src/core/errors.js';
import {
  decodeSm2Signature,
  encodeSm2Signature,
  SM2_DEFAULT_ID,
  sm2GenerateKeyPair,
  sm2PublicKey,
  sm2Sign,
  sm2Verify,
} from '../../src/crypto/sm2.js';
import { toHex } from './vectors.js';

const { sm2 } = smCrypto;

describe('SM2 signatures', () => {
  it('sm-crypto verifies ours (raw and DER, default and custom ID)', () => {
    for (let i = 0; i < 8; i++) {
      const kp = sm2GenerateKeyPair();
      const msg = randomBytes(i * 13).toString('hex');
      const userId = i % 2 ? `device-${i}@kapok` : SM2_DEFAULT_ID;
      const raw = sm2Sign(kp.privateKey, msg, { format: 'raw', id: userId });
      assert.equal(raw.length, 64);
      assert.ok(sm2.doVerifySignature(msg, toHex(raw), toHex(kp.publicKey), { hash: true, userId }));
      const der = sm2Sign(kp.privateKey, msg, { id: userId });
      assert.ok(
        sm2.doVerifySignature(msg, toHex(der), toHex(kp.publicKey), { hash: true, der: true, userId }),
      );
    }
  });

  it('we verify sm-crypto (raw and DER, default and custom ID)', () => {
    for (let i = 0; i < 8; i++) {
      const keys = sm2.generateKeyPairHex();
      const pub = Uint8Array.from(Buffer.from(keys.publicKey, 'hex'));
      assert.deepEqual(
        sm2PublicKey(Uint8Array.from(Buffer.from(keys.privateKey.padStart(64, '0'), 'hex'))),
        pub,
      );
      const msg = `message ${i} ${randomBytes(8).toString('hex')}`;
      const userId = i % 2 ? 'ALICE123@YAHOO.COM' : SM2_DEFAULT_ID;
      const raw = sm2.doSignature(msg, keys.privateKey, { hash: true, userId });
      assert.ok(sm2Verify(pub, msg, Buffer.from(raw, 'hex'), { id: userId }));
      const der = sm2.doSignature(msg, keys.privateKey, { hash: true, der: true, userId });
      assert.ok(sm2Verify(pub, msg, Buffer.from(der, 'hex'), { id: userId }));
      assert.equal(sm2Verify(pub, `${msg}!`, Buffer.from(der, 'hex'), { id: userId }), false);
      assert.equal(sm2Verify(pub, msg, Buffer.from(der, 'hex'), { id: 'someone else' }), false);
    }
  });

  it('rejects tampered, out-of-range and malformed signatures without throwing', () => {
    const kp = sm2GenerateKeyPair();
    const sig = sm2Sign(kp.privateKey, 'm', { format: 'raw' });
    const { r, s } = decodeSm2Signature(sig);
    const other = sm2GenerateKeyPair();
    assert.ok(sm2Verify(kp.publicKey, 'm', sig));
    assert.equal(sm2Verify(other.publicKey, 'm', sig), false);
    assert.equal(sm2Verify(kp.publicKey, 'm', encodeSm2Signature(r, s + 1n, 'raw')), false);
    assert.equal(sm2Verify(kp.publicKey, 'm', encodeSm2Signature(0n, s, 'der')), false);
    const n = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
    assert.equal(sm2Verify(kp.publicKey, 'm', encodeSm2Signature(r + n, s, 'der')), false);
    const der = sm2Sign(kp.privateKey, 'm');
    assert.equal(sm2Verify(kp.publicKey, 'm', der.subarray(0, der.length - 1)), false);
    assert.equal(sm2Verify(kp.publicKey, 'm', Uint8Array.of(...der, 0)), false);
    assert.equal(sm2Verify(kp.publicKey, 'm', randomBytes(70)), false);
    assert.equal(sm2Verify(Uint8Array.of(4, ...randomBytes(64)), 'm', der), false);
  });

  it('tells raw from DER even when r begins with 0x30', () => {
    const kp = sm2GenerateKeyPair();
    for (let i = 0; i < 2000; i++) {
      const raw = sm2Sign(kp.privateKey, `m${i}`, { format: 'raw' });
      if (raw[0] !== 0x30) continue;
      assert.ok(sm2Verify(kp.publicKey, `m${i}`, raw));
      return;
    }
    assert.fail('no signature with r starting 0x30 in 2000 tries');
  });

  it('checks private keys', () => {
    const bad = (k: Uint8Array) =>
      assert.throws(
        () => sm2Sign(k, 'm'),
        (e: unknown) => isKapokError(e, 'KAPOK_GM_INVALID_KEY'),
      );
    bad(new Uint8Array(32));
    bad(new Uint8Array(31).fill(1));
    bad(new Uint8Array(32).fill(0xff));
  });
});
