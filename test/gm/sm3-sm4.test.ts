import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import smCrypto from 'sm-crypto';
import { isKapokError } from '../../src/core/errors.js';
import { fromHex } from '../../src/gm/crypto/bytes.js';
import { hmacSm3, pbkdf2Sm3, sm3, sm3Kdf } from '../../src/gm/crypto/sm3.js';
import { sm4Decrypt, sm4Encrypt, sm4GcmDecrypt, sm4GcmEncrypt } from '../../src/gm/crypto/sm4.js';
import { hex, toHex, vectors } from './vectors.js';

// RFC 8998 appendix A.1 (SM4-GCM).
const GCM = {
  key: '0123456789ABCDEFFEDCBA9876543210',
  iv: '00001234567800000000ABCD',
  aad: 'FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2',
  pt: 'AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA',
  ct: '17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D',
  tag: '83DE3541E4C2B58177E065A9BF7B62EC',
};

const rejects = (fn: () => unknown, code: string) =>
  assert.throws(fn, (e: unknown) => isKapokError(e) && e.code === code);

describe('SM3 family', () => {
  // GB/T 32905-2016 (GM/T 0004-2012) Appendix A: example 1 ("abc") and example 2 ("abcd" x 16, one
  // full 64-byte block plus padding). Checked against the standard's printed values, and against
  // sm-crypto (a second implementation, pure JS) and Node's OpenSSL, so no implementation vouches
  // for itself.
  const SM3_KAT = [
    ['abc', '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0'],
    ['abcd'.repeat(16), 'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732'],
  ] as const;
  it('known answers of GB/T 32905-2016 Appendix A (examples 1 and 2)', () => {
    for (const [msg, digest] of SM3_KAT) {
      assert.equal(toHex(sm3(msg)), digest, `sm3(${msg.slice(0, 8)}…)`);
      assert.equal(smCrypto.sm3(msg), digest, 'sm-crypto agrees');
      assert.equal(createHash('sm3').update(msg).digest('hex'), digest, 'OpenSSL agrees');
    }
  });

  it('PBKDF2-HMAC-SM3 matches the GmSSL vector', () => {
    const v = vectors.pbkdf2_hmac_sm3;
    assert.equal(toHex(pbkdf2Sm3(v.password, v.salt, v.iterations, v.dkLen)), v.dk);
  });

  it('sm3 of parts equals the hash of their concatenation; hmac is keyed', () => {
    assert.equal(toHex(sm3('ab', Uint8Array.of(0x63))), createHash('sm3').update('abc').digest('hex'));
    assert.notEqual(toHex(hmacSm3(hex('00'), 'x')), toHex(hmacSm3(hex('01'), 'x')));
  });

  it('the KDF is SM3(Z || counter) blocks cut to length', () => {
    const z = randomBytes(40);
    const k = sm3Kdf(z, 70);
    assert.equal(k.length, 70);
    const b1 = sm3(z, hex('00000001'));
    const b3 = sm3(z, hex('00000003'));
    assert.equal(toHex(k.subarray(0, 32)), toHex(b1));
    assert.equal(toHex(k.subarray(64)), toHex(b3.subarray(0, 6)));
    rejects(() => sm3Kdf(z, 0), 'KAPOK_GM_INVALID_INPUT');
  });
});

describe('SM4', () => {
  it('SM4-GCM reproduces RFC 8998 A.1 and decrypts it', () => {
    const { ciphertext, tag } = sm4GcmEncrypt(hex(GCM.key), hex(GCM.iv), hex(GCM.pt), hex(GCM.aad));
    assert.equal(toHex(ciphertext), GCM.ct.toLowerCase());
    assert.equal(toHex(tag), GCM.tag.toLowerCase());
    const pt = sm4GcmDecrypt(hex(GCM.key), hex(GCM.iv), hex(GCM.ct), hex(GCM.tag), hex(GCM.aad));
    assert.equal(toHex(pt), GCM.pt.toLowerCase());
  });

  it('SM4-GCM rejects a tampered tag, ciphertext, AAD or nonce', () => {
    const key = hex(GCM.key);
    const iv = hex(GCM.iv);
    const flip = (h: string, i = 0) => {
      const b = hex(h);
      b[i] = (b[i] as number) ^ 1;
      return b;
    };
    const code = 'KAPOK_GM_DECRYPT_FAILED';
    rejects(() => sm4GcmDecrypt(key, iv, hex(GCM.ct), flip(GCM.tag, 15), hex(GCM.aad)), code);
    rejects(() => sm4GcmDecrypt(key, iv, flip(GCM.ct, 40), hex(GCM.tag), hex(GCM.aad)), code);
    rejects(() => sm4GcmDecrypt(key, iv, hex(GCM.ct), hex(GCM.tag), flip(GCM.aad)), code);
    rejects(() => sm4GcmDecrypt(key, flip(GCM.iv), hex(GCM.ct), hex(GCM.tag), hex(GCM.aad)), code);
    rejects(() => sm4GcmDecrypt(key, iv, hex(GCM.ct), hex(GCM.tag)), code);
    rejects(() => sm4GcmDecrypt(key, iv, hex(GCM.ct), hex(GCM.tag).subarray(0, 15), hex(GCM.aad)), code);
  });

  it('SM4-GCM round-trips any length, with non-96-bit nonces and empty input', () => {
    for (const len of [0, 1, 15, 16, 17, 100, 4096 + 3]) {
      for (const ivLen of [12, 8, 16]) {
        const key = randomBytes(16);
        const iv = randomBytes(ivLen);
        const pt = randomBytes(len);
        const aad = randomBytes(len % 7);
        const { ciphertext, tag } = sm4GcmEncrypt(key, iv, pt, aad);
        assert.equal(ciphertext.length, len);
        assert.deepEqual(sm4GcmDecrypt(key, iv, ciphertext, tag, aad), new Uint8Array(pt));
      }
    }
  });

  it('SM4-GCM checks key, nonce and tag sizes', () => {
    rejects(() => sm4GcmEncrypt(randomBytes(15), randomBytes(12), hex('00')), 'KAPOK_GM_INVALID_KEY');
    rejects(() => sm4GcmEncrypt(randomBytes(16), new Uint8Array(0), hex('00')), 'KAPOK_GM_INVALID_INPUT');
    rejects(
      () => sm4GcmDecrypt(randomBytes(16), randomBytes(12), hex('00'), randomBytes(4)),
      'KAPOK_GM_DECRYPT_FAILED',
    );
  });

  it('ECB, CBC and CTR round-trip and agree with the SM4 standard example', () => {
    // GB/T 32907 appendix A.1: the key encrypts itself to 681EDF34D206965E86B3E94F536E4246.
    const k = hex('0123456789abcdeffedcba9876543210');
    const block = sm4Encrypt('ecb', k, undefined, k, { padding: false });
    assert.equal(toHex(block), '681edf34d206965e86b3e94f536e4246');
    assert.equal(toHex(sm4Decrypt('ecb', k, undefined, block, { padding: false })), toHex(k));
    for (const mode of ['ecb', 'cbc', 'ctr'] as const) {
      const iv = mode === 'ecb' ? undefined : randomBytes(16);
      const pt = randomBytes(33);
      assert.deepEqual(sm4Decrypt(mode, k, iv, sm4Encrypt(mode, k, iv, pt)), new Uint8Array(pt));
    }
    rejects(() => sm4Encrypt('cbc', k, randomBytes(8), hex('00')), 'KAPOK_GM_INVALID_INPUT');
    rejects(
      () => sm4Decrypt('cbc', randomBytes(16), randomBytes(16), randomBytes(32)),
      'KAPOK_GM_DECRYPT_FAILED',
    );
  });

  it('hex parsing names the input and never echoes it', () => {
    assert.deepEqual(fromHex('0x0aFF', 'k'), Uint8Array.of(10, 255));
    assert.throws(() => fromHex('abc', 'SM4 key'), /SM4 key: expected hex.*odd number/);
    assert.throws(
      () => fromHex('zz', 'SM4 key'),
      (e: Error) => !e.message.includes('zz'),
    );
    rejects(() => fromHex('00', 'k', 16), 'KAPOK_GM_INVALID_INPUT');
  });
});
