import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import smCrypto from 'sm-crypto';
import { isKapokError } from '../../src/core/errors.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { hmacSm3, pbkdf2Sm3, sm3, sm3Kdf } from '../../src/crypto/sm3.js';
import { sm4Decrypt, sm4Encrypt, sm4GcmDecrypt, sm4GcmEncrypt } from '../../src/crypto/sm4.js';
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

  it('sm3 of parts is the hash of their concatenation (the Appendix A example 1 answer)', () => {
    assert.equal(toHex(sm3('ab', Uint8Array.of(0x63))), SM3_KAT[0][1]);
    assert.equal(toHex(sm3('abcd'.repeat(8), 'abcd'.repeat(8))), SM3_KAT[1][1]);
  });

  // HMAC-SM3 known answers of GM/T 0042-2015 (SM-based certificate authentication framework)
  // Appendix D.3, as quoted in OpenSSL test/recipes/30-test_evp_data/evpmac_sm3.txt and in
  // intel-ipsec-mb test/kat-app/hmac_sm3.json.c. hmacSm3 runs on Node's OpenSSL, so the second
  // implementation checked beside the printed values is sm-crypto's HMAC (pure JS).
  const seq = (from: number, to: number) => Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const HMAC_KAT: Array<[Uint8Array, Uint8Array, string]> = [
    [
      seq(1, 0x20),
      new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'.repeat(2)),
      'ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a',
    ],
    [
      seq(1, 0x25),
      new Uint8Array(50).fill(0xcd),
      '220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae',
    ],
    [
      new Uint8Array(32).fill(0x0b),
      new TextEncoder().encode('Hi There'),
      'c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e',
    ],
    [
      new TextEncoder().encode('Jefe Jeferson Jr'),
      new TextEncoder().encode('what do ya want for nothing?'),
      'ce791a34c59adef472997a249600f3f244d59e875be04055ba2ae12fc845e78c',
    ],
  ];
  it('HMAC-SM3 known answers of GM/T 0042-2015 Appendix D.3, with sm-crypto and OpenSSL agreeing', () => {
    for (const [key, data, mac] of HMAC_KAT) {
      assert.equal(toHex(hmacSm3(key, data)), mac, `key of ${key.length} bytes`);
      assert.equal(smCrypto.sm3(Array.from(data), { key: Array.from(key) }), mac, 'sm-crypto agrees');
      assert.equal(createHmac('sm3', key).update(data).digest('hex'), mac, 'OpenSSL agrees');
    }
  });

  it('HMAC-SM3 with a key longer than the 64-byte block (hashed first) agrees with sm-crypto', () => {
    for (const len of [64, 65, 100, 200]) {
      const key = randomBytes(len);
      const data = randomBytes(len % 37);
      assert.equal(
        toHex(hmacSm3(key, data)),
        smCrypto.sm3(Array.from(data), { key: Array.from(key) }),
        `key of ${len} bytes`,
      );
    }
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

  // GB/T 32907-2016 Appendix A: example 1 (the key encrypts itself once) and example 2 (the same
  // block encrypted 1,000,000 times). sm-crypto (pure JS) is the independent second implementation.
  const K = '0123456789abcdeffedcba9876543210';
  const noPad = { padding: false } as const;
  const smEcb = (key: string, block: Uint8Array) =>
    toHex(
      Uint8Array.from(smCrypto.sm4.encrypt(Array.from(block), key, { padding: 'none', output: 'array' })),
    );

  it('GB/T 32907-2016 Appendix A example 1 (ECB block), with sm-crypto agreeing', () => {
    const block = sm4Encrypt('ecb', hex(K), undefined, hex(K), noPad);
    assert.equal(toHex(block), '681edf34d206965e86b3e94f536e4246');
    assert.equal(smEcb(K, hex(K)), '681edf34d206965e86b3e94f536e4246', 'sm-crypto agrees');
    assert.equal(toHex(sm4Decrypt('ecb', hex(K), undefined, block, noPad)), K);
  });

  it('GB/T 32907-2016 Appendix A example 2 (1,000,000 encryptions), through one CBC call', () => {
    // CBC over zero blocks with IV = P gives C_i = E(C_{i-1} xor 0) = E^i(P): the last block of one
    // sm4Encrypt('cbc') call over 10^6 zero blocks is the example's millionth iterate.
    const out = sm4Encrypt('cbc', hex(K), hex(K), new Uint8Array(16 * 1_000_000), noPad);
    assert.equal(toHex(out.subarray(out.length - 16)), '595298c7c6fd271f0402f804c33d3f66');
  });

  // CBC and CTR: the examples of draft-ribose-cfrg-sm4-10 Appendix A.2.2 (CBC) and A.2.5 (CTR), and
  // OpenSSL's test/recipes/30-test_evp_data/evpciph_sm4.txt (titled "from IETF
  // draft-ribose-cfrg-sm4", key = IV = 0123…3210). Checked against the printed ciphertexts, against
  // sm-crypto (CBC directly; CTR built here from its ECB block function, counter = IV + i over all
  // 128 bits) and against Node's OpenSSL.
  const A2_PT16 = 'aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb';
  const A2_PT32 =
    'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccddddddddddddddddeeeeeeeeeeeeeeeeffffffffffffffffaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb';
  const IV = '000102030405060708090a0b0c0d0e0f';
  const K2 = 'fedcba98765432100123456789abcdef';
  const CBC_KAT: Array<[string, string, string, string]> = [
    [K, IV, A2_PT16, '78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d'],
    [K2, IV, A2_PT16, '0d3a6ddc2d21c698857215587b7bb59a91f2c147911a4144665e1fa1d40bae38'],
    [K, K, K, '2677f46b09c122cc975533105bd4a22a'],
    [K, K, K + K, '2677f46b09c122cc975533105bd4a22af6125f7275ce552c3a2bbcf533de8a3b'],
  ];
  const CTR_KAT: Array<[string, string, string, string]> = [
    [
      K,
      IV,
      A2_PT32,
      'ac3236cb970cc20791364c395a1342d1a3cbc1878c6f30cd074cce385cdd70c7f234bc0e24c11980fd1286310ce37b926e02fcd0faa0baf38b2933851d824514',
    ],
    [
      K2,
      IV,
      A2_PT32,
      '5dcccd25b95ab07417a08512ee160e2f8f661521cbbab44cc87138445bc29e5c0ae0297205d62704173b21239b887f6c8cb5b800917a2488284bde9e16ea2906',
    ],
    [
      K,
      K,
      'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccddddddddddddddddeeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa',
      'c2b4759e78ac3cf43d0852f4e8d5f9fd7256e8a5fcb65a350ee00630912e44492a0b17e1b85b060d0fba612d8a95831638b361fd5ffacd942f081485a83ca35d',
    ],
  ];

  it('SM4-CBC known answers (draft-ribose-cfrg-sm4 A.2.2, OpenSSL evpciph_sm4), with sm-crypto agreeing', () => {
    for (const [key, iv, pt, ct] of CBC_KAT) {
      assert.equal(toHex(sm4Encrypt('cbc', hex(key), hex(iv), hex(pt), noPad)), ct);
      assert.equal(toHex(sm4Decrypt('cbc', hex(key), hex(iv), hex(ct), noPad)), pt);
      const theirs = smCrypto.sm4.encrypt(Array.from(hex(pt)), key, {
        mode: 'cbc',
        iv,
        padding: 'none',
        output: 'array',
      });
      assert.equal(toHex(Uint8Array.from(theirs)), ct, 'sm-crypto agrees');
      const c = createCipheriv('sm4-cbc', hex(key), hex(iv)).setAutoPadding(false);
      assert.equal(Buffer.concat([c.update(hex(pt)), c.final()]).toString('hex'), ct, 'OpenSSL agrees');
    }
  });

  it('SM4-CTR known answers (draft-ribose-cfrg-sm4 A.2.5, OpenSSL evpciph_sm4), with sm-crypto agreeing', () => {
    const smCtr = (key: string, iv: string, pt: Uint8Array) => {
      const out = new Uint8Array(pt.length);
      const ctr = BigInt(`0x${iv}`);
      for (let i = 0; i < pt.length; i += 16) {
        const block = hex(((ctr + BigInt(i / 16)) % (1n << 128n)).toString(16), 16);
        const ks = hex(smEcb(key, block));
        for (let j = i; j < Math.min(i + 16, pt.length); j++)
          out[j] = (pt[j] as number) ^ (ks[j - i] as number);
      }
      return toHex(out);
    };
    for (const [key, iv, pt, ct] of CTR_KAT) {
      assert.equal(toHex(sm4Encrypt('ctr', hex(key), hex(iv), hex(pt))), ct);
      assert.equal(toHex(sm4Decrypt('ctr', hex(key), hex(iv), hex(ct))), pt);
      assert.equal(smCtr(key, iv, hex(pt)), ct, 'sm-crypto (ECB as the block function) agrees');
      const c = createCipheriv('sm4-ctr', hex(key), hex(iv));
      assert.equal(Buffer.concat([c.update(hex(pt)), c.final()]).toString('hex'), ct, 'OpenSSL agrees');
      // A prefix that is not a whole block is the same prefix of the ciphertext.
      assert.equal(toHex(sm4Encrypt('ctr', hex(key), hex(iv), hex(pt).subarray(0, 21))), ct.slice(0, 42));
    }
  });

  it('ECB, CBC and CTR round-trip any length; bad IVs and wrong keys are refused', () => {
    const k = hex(K);
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
