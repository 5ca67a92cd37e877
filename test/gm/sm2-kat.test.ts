import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import smCrypto from 'sm-crypto';
import { bigintToBytes, concatBytes, mod } from '../../src/crypto/bytes.js';
import {
  SM2_DOMAIN,
  type Sm2Domain,
  sm2Domain,
  sm2PublicKey,
  sm2Sign,
  sm2SignOn,
  sm2Verify,
  sm2VerifyOn,
  sm2Z,
} from '../../src/crypto/sm2.js';
import { sm3, sm3Kdf } from '../../src/crypto/sm3.js';
import { hex, toHex } from './vectors.js';

/**
 * Known answers from the worked examples of GB/T 32918-2016 (GM/T 0003-2012), SM2. Parts 2-4 work
 * their examples on a 256-bit *example* curve printed in each appendix A.1, not on the recommended
 * curve; part 5 (GB/T 32918.5-2017 / GM/T 0003.5-2012) repeats signature and encryption examples
 * on the recommended curve (its annexes A and C). The numbers were copied from the standard as
 * quoted by BouncyCastle (SM2SignerTest, SM2KeyExchangeTest, SM2EngineTest), GmSSL's sm2 tests,
 * emmansun/gmsm and OpenSSL's sm2_internal_test (which cites GM/T 0003.5-2012 annexes A and C).
 *
 * Kapok implements SM2 signatures only: no SM2 key exchange and no SM2 public-key encryption.
 * The part 3 and part 4 examples are still checked where Kapok has the code they exercise: the
 * Z values (sm2Z) and the key derivation function (sm3Kdf). The exchange and encryption
 * arithmetic around them is written out in this test, from the standard's steps.
 */

const big = (h: string) => BigInt(`0x${h}`);
const b32 = (n: bigint) => bigintToBytes(n, 32);
const text = (s: string) => new TextEncoder().encode(s);
const fixedK = (h: string) => () => hex(h, 32);

/** GB/T 32918.2/.3/.4 appendix A.1: the Fp-256 example curve. */
const EXAMPLE: Sm2Domain = sm2Domain({
  p: big('8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3'),
  a: big('787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498'),
  b: big('63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A'),
  n: big('8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7'),
  h: 1n,
  Gx: big('421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D'),
  Gy: big('0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2'),
});

const point = (x: string, y: string) => `04${x}${y}`.toLowerCase();

describe('SM2 known answers, GB/T 32918 example curve (parts 2-4, appendix A)', () => {
  it('the example curve is well formed: G on the curve, [n-1]G = -G (so [n]G = O)', () => {
    const G = EXAMPLE.Point.BASE;
    G.assertValidity();
    assert.ok(G.multiplyUnsafe(EXAMPLE.curve.n - 1n).equals(G.negate()));
  });

  it('part 2 A.2 (signature): PA, Z_A, e, then r and s with the printed k; it verifies', () => {
    const dA = hex('128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263');
    const id = 'ALICE123@YAHOO.COM';
    const msg = 'message digest';
    const pub = sm2PublicKey(dA, EXAMPLE);
    assert.equal(
      toHex(pub),
      point(
        '0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A',
        '7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857',
      ),
    );
    const za = sm2Z(pub, id, EXAMPLE);
    assert.equal(toHex(za), 'f4a38489e32b45b6f876e3ac2168ca392362dc8f23459c1d1146fc3dbfb7bc9a');
    assert.equal(toHex(sm3(za, msg)), 'b524f552cd82b8b028476e005c377fb19a87e6fc682d48bb5d42e3d9b9effe76');
    const sig = sm2SignOn(EXAMPLE, dA, msg, {
      id,
      random: fixedK('6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F'),
    });
    assert.equal(sig.r, big('40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1'));
    assert.equal(sig.s, big('6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7'));
    assert.ok(sm2VerifyOn(EXAMPLE, pub, msg, sig, id));
    assert.equal(sm2VerifyOn(EXAMPLE, pub, 'message digesT', sig, id), false);
    assert.equal(sm2VerifyOn(EXAMPLE, pub, msg, sig, 'BILL456@YAHOO.COM'), false);
  });

  it('part 3 A.2 (key exchange): PA, PB, Z_A, Z_B, RA, RB, V and K = KDF(xV||yV||ZA||ZB), S_B, S_A', () => {
    const P = EXAMPLE.Point;
    const n = EXAMPLE.curve.n;
    const dA = big('6FCBA2EF9AE0AB902BC3BDE3FF915D44BA4CC78F88E2F8E7F8996D3B8CCEEDEE');
    const dB = big('5E35D7D3F3C54DBAC72E61819E730B019A84208CA3A35E4C2E353DFCCB2A3B53');
    const pa = sm2PublicKey(b32(dA), EXAMPLE);
    const pb = sm2PublicKey(b32(dB), EXAMPLE);
    assert.equal(
      toHex(pa),
      point(
        '3099093BF3C137D8FCBBCDF4A2AE50F3B0F216C3122D79425FE03A45DBFE1655',
        '3DF79E8DAC1CF0ECBAA2F2B49D51A4B387F2EFAF482339086A27A8E05BAED98B',
      ),
    );
    assert.equal(
      toHex(pb),
      point(
        '245493D446C38D8CC0F118374690E7DF633A8A4BFB3329B5ECE604B2B4F37F43',
        '53C0869F4B9E17773DE68FEC45E14904E0DEA45BF6CECF9918C85EA047C60A4C',
      ),
    );
    const za = sm2Z(pa, 'ALICE123@YAHOO.COM', EXAMPLE);
    const zb = sm2Z(pb, 'BILL456@YAHOO.COM', EXAMPLE);
    assert.equal(toHex(za), 'e4d1d0c3ca4c7f11bc8ff8cb3f4c02a78f108fa098e51a668487240f75e20f31');
    assert.equal(toHex(zb), '6b4b6d0e276691bd4a11bf72f4fb501ae309fdacb72fa6cc336e6656119abd67');

    // Steps A1-A5 and B1-B5 of GB/T 32918.3 clause 6.1, w = 127 for a 256-bit n.
    const rA = big('83A2C9C8B96E5AF70BD480B472409A9A327257F1EBB73F5B073354B248668563');
    const rB = big('33FE21940342161C55619C4A0C060293D543C80AF19748CE176D83477DE71C80');
    const RA = P.BASE.multiply(rA).toAffine();
    const RB = P.BASE.multiply(rB).toAffine();
    assert.equal(RA.x, big('6CB5633816F4DD560B1DEC458310CBCC6856C09505324A6D23150C408F162BF0'));
    assert.equal(RA.y, big('0D6FCF62F1036C0A1B6DACCF57399223A65F7D7BF2D9637E5BBBEB857961BF1A'));
    assert.equal(RB.x, big('1799B2A2C778295300D9A2325C686129B8F2B5337B3DCF4514E8BBC19D900EE5'));
    assert.equal(RB.y, big('54C9288C82733EFDF7808AE7F27D0E732F7C73A7D9AC98B7D8740A91D0DB3CF4'));
    const bar = (x: bigint) => (1n << 127n) + (x & ((1n << 127n) - 1n));
    assert.equal(bar(RA.x), big('E856C09505324A6D23150C408F162BF0'));
    assert.equal(bar(RB.x), big('B8F2B5337B3DCF4514E8BBC19D900EE5'));
    const tA = mod(dA + bar(RA.x) * rA, n);
    const tB = mod(dB + bar(RB.x) * rB, n);
    assert.equal(tA, big('236CF0C7A177C65C7D55E12D361F7A6C174A78698AC099C0874AD0658A4743DC'));
    assert.equal(tB, big('2B2E11CBF03641FC3D939262FC0B652A70ACAA25B5369AD38B375C0265490C9F'));
    // V = [h·tB](PA + [x̄1]RA) on B's side; U = [h·tA](PB + [x̄2]RB) on A's side, the same point.
    const ra = P.fromAffine(RA);
    const rb = P.fromAffine(RB);
    const V = P.fromBytes(pa)
      .add(ra.multiply(bar(RA.x)))
      .multiply(tB)
      .toAffine();
    const U = P.fromBytes(pb)
      .add(rb.multiply(bar(RB.x)))
      .multiply(tA)
      .toAffine();
    assert.equal(V.x, big('47C826534DC2F6F1FBF28728DD658F21E174F48179ACEF2900F8B7F566E40905'));
    assert.equal(V.y, big('2AF86EFE732CF12AD0E09A1F2556CC650D9CCCE3E249866BBB5C6846A4C4A295'));
    assert.deepEqual(U, V);
    // Kapok's KDF on the exchange's input, klen = 128 bits.
    const K = sm3Kdf(concatBytes(b32(V.x), b32(V.y), za, zb), 16);
    assert.equal(toHex(K), '55b0ac62a6b927ba23703832c853ded4');
    // Optional confirmation: S_B (= S_1) with prefix 0x02, S_A (= S_2) with prefix 0x03.
    const inner = sm3(b32(V.x), za, zb, b32(RA.x), b32(RA.y), b32(RB.x), b32(RB.y));
    assert.equal(
      toHex(sm3(Uint8Array.of(2), b32(V.y), inner)),
      '284c8f198f141b502e81250f1581c7e9eeb4ca6990f9e02df388b45471f5bc5c',
    );
    assert.equal(
      toHex(sm3(Uint8Array.of(3), b32(V.y), inner)),
      '23444daf8ed7534366cb901c84b3bdbb63504f4065c1116c91a4c00697e6cf7a',
    );
  });

  it('part 4 A.2 (encryption): C1 = [k]G, (x2, y2) = [k]PB, t = KDF(x2||y2), C2 = M xor t, C3', () => {
    const dB = hex('1649AB77A00637BD5E2EFE283FBF353534AA7F7CB89463F208DDBC2920BB0DA0');
    const k = big('4C62EEFD6ECFC2B95B92FD6C3D9575148AFA17425546D49018E5388D49DD7B4F');
    const m = text('encryption standard');
    const P = EXAMPLE.Point;
    const c1 = P.BASE.multiply(k).toBytes(false);
    assert.equal(
      toHex(c1),
      point(
        '245C26FB68B1DDDDB12C4B6BF9F2B6D5FE60A383B0D18D1C4144ABF17F6252E7',
        '76CB9264C2A7E88E52B19903FDC47378F605E36811F5C07423A24B84400F01B8',
      ),
    );
    const s = P.fromBytes(sm2PublicKey(dB, EXAMPLE)).multiply(k).toAffine();
    assert.equal(s.x, big('64D20D27D0632957F8028C1E024F6B02EDF23102A566C932AE8BD613A8E865FE'));
    assert.equal(s.y, big('58D225ECA784AE300A81A2D48281A828E1CEDF11C4219099840265375077BF78'));
    const t = sm3Kdf(concatBytes(b32(s.x), b32(s.y)), m.length);
    assert.equal(toHex(t), '006e30dae231b071dfad8aa379e90264491603');
    assert.equal(toHex(m.map((b, i) => b ^ (t[i] as number))), '650053a89b41c418b0c3aad00d886c00286467');
    assert.equal(
      toHex(sm3(b32(s.x), m, b32(s.y))),
      '9c3d7360c30156fab7c80a0276712da9d8094a634b766d3a285e07480653426d',
    );
  });
});

describe('SM2 known answers, recommended curve (GB/T 32918.5-2017 / GM/T 0003.5-2012)', () => {
  const d = '3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8';
  const pubHex = point(
    '09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020',
    'CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13',
  );
  const k = '59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21';
  const r = 'f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3';
  const s = 'b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa';
  const msg = 'message digest';

  it('annex A (signature, default ID): key, Z_A, e, then r and s through sm2Sign with the printed k', () => {
    const pub = sm2PublicKey(hex(d));
    assert.equal(toHex(pub), pubHex);
    const za = sm2Z(pub);
    assert.equal(toHex(za), 'b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3');
    assert.equal(toHex(sm3(za, msg)), 'f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640');
    const raw = sm2Sign(hex(d), msg, { format: 'raw', random: fixedK(k) });
    assert.equal(toHex(raw), r + s);
    assert.ok(sm2Verify(pub, msg, hex(r + s)));
    assert.equal(sm2Verify(pub, `${msg}.`, hex(r + s)), false);
    // The public entry and the domain-taking one agree on the recommended curve.
    const on = sm2SignOn(SM2_DOMAIN, hex(d), msg, { random: fixedK(k) });
    assert.equal(toHex(concatBytes(b32(on.r), b32(on.s))), r + s);
  });

  it('annex A, cross-checked: sm-crypto with the same k signs the same (r, s) and verifies it', () => {
    const { sm2 } = smCrypto;
    // sm-crypto takes a precomputed (k, x1 = ([k]G).x) through pointPool; x1 comes from its own
    // arithmetic, and so do Z and e.
    const kG = (
      sm2 as unknown as { getPublicKeyFromPrivateKey(h: string): string }
    ).getPublicKeyFromPrivateKey(k.toLowerCase());
    const template = sm2.getPoint();
    const BigInteger = template.k.constructor as new (h: string, radix: number) => typeof template.k;
    const pool = [{ ...template, k: new BigInteger(k, 16), x1: new BigInteger(kG.slice(2, 66), 16) }];
    const theirs = sm2.doSignature(msg, d.toLowerCase(), { pointPool: pool, userId: '1234567812345678' });
    assert.equal(theirs, r + s);
    assert.ok(sm2.doVerifySignature(msg, r + s, pubHex, { userId: '1234567812345678' }));
  });

  it('annex C (encryption): C1, C3, C2 through sm3Kdf; sm-crypto decrypts the printed ciphertext', () => {
    const m = text('encryption standard');
    const c1 = SM2_DOMAIN.Point.BASE.multiply(big(k)).toBytes(false);
    assert.equal(
      toHex(c1),
      point(
        '04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73',
        'E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0',
      ),
    );
    const sh = SM2_DOMAIN.Point.fromBytes(hex(pubHex)).multiply(big(k)).toAffine();
    const t = sm3Kdf(concatBytes(b32(sh.x), b32(sh.y)), m.length);
    const c2 = toHex(m.map((b, i) => b ^ (t[i] as number)));
    const c3 = toHex(sm3(b32(sh.x), m, b32(sh.y)));
    assert.equal(c3, '59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766');
    assert.equal(c2, '21886ca989ca9c7d58087307ca93092d651efa');
    // A second implementation on the printed ciphertext (C1 || C3 || C2, C1 without its 04).
    const printed = toHex(c1).slice(2) + c3 + c2;
    assert.equal(smCrypto.sm2.doDecrypt(printed, d.toLowerCase(), 1), 'encryption standard');
  });
});
