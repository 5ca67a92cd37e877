import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { isKapokError } from '../../src/core/errors.js';
import { bigintToBytes, concatBytes } from '../../src/crypto/bytes.js';
import { sm3, sm3Kdf } from '../../src/crypto/sm3.js';
import { N, P, T } from '../../src/crypto/sm9/fp2.js';
import { g2inSubgroup } from '../../src/crypto/sm9/g2.js';
import { gtToBytes, h1, h2 } from '../../src/crypto/sm9/hash.js';
import {
  decodeSm9Signature,
  encodeSm9Signature,
  Sm9EncMasterKey,
  Sm9SignMasterKey,
  Sm9SignMasterPublicKey,
  Sm9SignUserKey,
  sm9Decapsulate,
  sm9Encapsulate,
  sm9Sign,
  sm9Verify,
} from '../../src/crypto/sm9/index.js';
import { extractScalars, g2ToBytes } from '../../src/crypto/sm9/keys.js';
import { G1, P2 } from '../../src/crypto/sm9/params.js';
import { hex, toHex, vectors } from './vectors.js';

const sv = vectors.sm9_sign_example;
const kv = vectors.sm9_kem_example;
const fixedRandom = (h: string) => () => hex(h, 32);

describe('SM9 against GM/T 0044 examples', () => {
  const master = Sm9SignMasterKey.fromBytes(hex(sv.ks, 32));

  it('master public key Ppub-s = [ks]P2', () => {
    const p = sv.Ppub_s_as_printed;
    assert.equal(toHex(master.publicKey.toBytes()), `04${p.x[0]}${p.x[1]}${p.y[0]}${p.y[1]}`.toLowerCase());
  });

  it('curve parameters and generators', () => {
    const c = vectors.sm9_curve;
    assert.equal(P, BigInt(`0x${c.p}`));
    assert.equal(N, BigInt(`0x${c.n}`));
    assert.equal(T, BigInt(`0x${c.t}`));
    assert.equal(G1.CURVE().b, BigInt(`0x${c.b}`));
    assert.equal(P, 36n * T ** 4n + 36n * T ** 3n + 24n * T ** 2n + 6n * T + 1n);
    assert.equal(toHex(G1.BASE.toBytes(false)), `04${c.P1.x}${c.P1.y}`.toLowerCase());
    const p2 = c.P2_as_printed_in_standard_u_coefficient_first;
    assert.equal(toHex(g2ToBytes(P2)), `04${p2.x[0]}${p2.x[1]}${p2.y[0]}${p2.y[1]}`.toLowerCase());
    assert.ok(g2inSubgroup(P2));
  });

  it('H1(ID || hid), t1, t2 and the user signing key dsA', () => {
    const id = new TextEncoder().encode(sv.id);
    const hid = Number.parseInt(sv.hid, 16);
    assert.equal(h1(id, hid), BigInt(`0x${sv.H1}`));
    const { t1, t2 } = extractScalars(BigInt(`0x${sv.ks}`), id, hid);
    assert.equal(t1, BigInt(`0x${sv.t1}`));
    assert.equal(t2, BigInt(`0x${sv.t2}`));
    const user = master.extract(sv.id, Number.parseInt(sv.hid, 16));
    assert.equal(toHex(user.toBytes()), `04${sv.dsA.x}${sv.dsA.y}`.toLowerCase());
  });

  it('signature (h, S) with the example r, and it verifies', () => {
    const user = master.extract(sv.id);
    const der = sm9Sign(master.publicKey, user, sv.message, { random: fixedRandom(sv.r) });
    const sig = decodeSm9Signature(der);
    assert.equal(sig.h, BigInt(`0x${sv.h}`));
    assert.equal(toHex(sig.S), sv.S.toLowerCase());
    // DER shape: SEQUENCE { OCTET STRING (32), BIT STRING (0 unused bits, 65 bytes) }.
    assert.equal(toHex(der.subarray(0, 4)), '30660420');
    assert.equal(toHex(der.subarray(36, 40)), '03420004');
    assert.ok(sm9Verify(master.publicKey, sv.id, sv.message, der));
  });

  it('signature example: w = g^r is the printed w (the pairing value behind h)', () => {
    const w = master.publicKey.gt().pow(BigInt(`0x${sv.r}`));
    assert.equal(toHex(gtToBytes(w)), sv.w_as_printed.toLowerCase());
    const m = new TextEncoder().encode(sv.message);
    assert.equal(h2(m, gtToBytes(w)), BigInt(`0x${sv.h}`));
  });
});

// GM/T 0044-2016 part 5 (GB/T 38635.2) appendix C, key encapsulation, recomputed step by step.
describe('SM9 KEM against GM/T 0044 part 5 appendix C', () => {
  const enc = Sm9EncMasterKey.fromBytes(hex(kv.ke, 32));
  const hid = Number.parseInt(kv.hid, 16);
  const xy = (p: { x: string; y: string }) => `04${p.x}${p.y}`.toLowerCase();

  it('master public key Ppub-e = [ke]P1 and user key deB = [t2]P2', () => {
    assert.equal(toHex(enc.publicKey.toBytes()), xy(kv.Ppub_e));
    const d = kv.deB_as_printed;
    assert.equal(
      toHex(enc.extract(kv.id, hid).toBytes()),
      `04${d.x[0]}${d.x[1]}${d.y[0]}${d.y[1]}`.toLowerCase(),
    );
  });

  it('QB = [H1(ID||hid)]P1 + Ppub-e, C = [r]QB, K = KDF(C||w||ID), and the receiver gets the same K', () => {
    const id = new TextEncoder().encode(kv.id);
    const qb = G1.BASE.multiply(h1(id, hid)).add(enc.publicKey.point);
    assert.equal(toHex(qb.toBytes(false)), xy(kv.QB));
    const r = BigInt(`0x${kv.r}`);
    assert.equal(toHex(qb.multiply(r).toBytes(false)), xy(kv.C));
    const out = sm9Encapsulate(enc.publicKey, kv.id, kv.klen_bytes, { hid, random: fixedRandom(kv.r) });
    assert.equal(toHex(out.encapsulation), xy(kv.C));
    assert.equal(toHex(out.key), kv.K.toLowerCase());
    // The same K from its definition, with w = e(Ppub-e, P2)^r from Kapok's pairing.
    const w = gtToBytes(enc.publicKey.gt().pow(r));
    assert.equal(
      toHex(sm3Kdf(concatBytes(out.encapsulation.subarray(1), w, id), kv.klen_bytes)),
      kv.K.toLowerCase(),
    );
    const user = enc.extract(kv.id, hid);
    assert.equal(toHex(sm9Decapsulate(user, kv.id, out.encapsulation, kv.klen_bytes)), kv.K.toLowerCase());
  });

  it('appendix D (encryption): the KEM path gives its C1 and K1||K2; C2 and C3 follow', () => {
    // Kapok has no SM9 encryption. Appendix D's K1||K2 = KDF(C1||w||ID, mlen + 32) is exactly a
    // KEM output of that length, so the KEM is checked against it; C2 = M xor K1 and
    // C3 = SM3(C2||K2) are formed here.
    const ev = vectors.sm9_enc_example;
    const m = new TextEncoder().encode(ev.message);
    const klen = m.length + ev.K2_len_bytes;
    const out = sm9Encapsulate(enc.publicKey, kv.id, klen, { hid, random: fixedRandom(ev.r) });
    assert.equal(toHex(out.encapsulation), `04${ev.C1}`.toLowerCase());
    assert.equal(toHex(out.key), ev.K1_K2.toLowerCase());
    const c2 = m.map((b, i) => b ^ (out.key[i] as number));
    assert.equal(toHex(c2), ev.C2.toLowerCase());
    assert.equal(toHex(sm3(c2, out.key.subarray(m.length))), ev.C3.toLowerCase());
    assert.equal(
      toHex(sm9Decapsulate(enc.extract(kv.id, hid), kv.id, out.encapsulation, klen)),
      ev.K1_K2.toLowerCase(),
    );
  });
});

describe('SM9 rejects', () => {
  const master = Sm9SignMasterKey.generate();
  const user = master.extract('device-001');
  const msg = 'telemetry challenge';
  const der = sm9Sign(master.publicKey, user, msg);
  const sig = decodeSm9Signature(der);
  const verify = (d: Uint8Array, opts: { id?: string; msg?: string; hid?: number } = {}) =>
    sm9Verify(master.publicKey, opts.id ?? 'device-001', opts.msg ?? msg, d, { hid: opts.hid ?? 1 });

  it('accepts the genuine signature', () => assert.ok(verify(der)));

  it('a tampered message, another ID, another hid, another master key', () => {
    assert.equal(verify(der, { msg: `${msg}.` }), false);
    assert.equal(verify(der, { id: 'device-002' }), false);
    assert.equal(verify(der, { hid: 2 }), false);
    assert.equal(sm9Verify(Sm9SignMasterKey.generate().publicKey, 'device-001', msg, der), false);
  });

  it('h out of range (0, N, above N) or changed', () => {
    for (const h of [0n, N, N + 1n, (1n << 256n) - 1n, sig.h + 1n])
      assert.equal(verify(encodeSm9Signature({ h, S: sig.S })), false, `h = ${h}`);
  });

  it('S not on the curve, S at another point, S not uncompressed', () => {
    const off = Uint8Array.from(sig.S);
    off[64] = (off[64] as number) ^ 1;
    assert.equal(verify(encodeSm9Signature({ h: sig.h, S: off })), false);
    const other = Uint8Array.from(user.toBytes());
    assert.equal(verify(encodeSm9Signature({ h: sig.h, S: other })), false);
    const compressed = Uint8Array.from(sig.S);
    compressed[0] = 2;
    assert.equal(verify(encodeSm9Signature({ h: sig.h, S: compressed })), false);
  });

  it('truncated, extended and garbled DER', () => {
    for (let cut = 1; cut < der.length; cut += 7) assert.equal(verify(der.subarray(0, cut)), false);
    assert.equal(verify(Uint8Array.of(...der, 0)), false);
    assert.equal(verify(new Uint8Array(0)), false);
    assert.equal(verify(randomBytes(der.length)), false);
    const wrongTag = Uint8Array.from(der);
    wrongTag[2] = 0x03;
    assert.equal(verify(wrongTag), false);
    assert.throws(
      () => decodeSm9Signature(der.subarray(0, 50)),
      (e: unknown) => isKapokError(e, 'KAPOK_GM_INVALID_SIGNATURE'),
    );
  });

  it('bad keys fail with KAPOK_GM_INVALID_KEY', () => {
    const invalid = (fn: () => unknown) =>
      assert.throws(fn, (e: unknown) => isKapokError(e, 'KAPOK_GM_INVALID_KEY'));
    invalid(() => Sm9SignMasterKey.fromBytes(new Uint8Array(32)));
    invalid(() => Sm9SignMasterKey.fromBytes(bigintToBytes(N, 32)));
    invalid(() => Sm9SignMasterKey.fromBytes(new Uint8Array(31).fill(1)));
    const pub = master.publicKey.toBytes();
    pub[128] = (pub[128] as number) ^ 1;
    invalid(() => Sm9SignMasterPublicKey.fromBytes(pub));
    invalid(() => Sm9SignMasterPublicKey.fromBytes(pub.subarray(1)));
    invalid(() => Sm9SignUserKey.fromBytes(new Uint8Array(65)));
  });
});

describe('SM9 properties', () => {
  it('sign then verify for random IDs and messages; key bytes round-trip', () => {
    const master = Sm9SignMasterKey.generate();
    const pub = Sm9SignMasterPublicKey.fromBytes(master.publicKey.toBytes());
    for (let i = 0; i < 24; i++) {
      const id = randomBytes(1 + (i % 24)).toString(i % 2 ? 'hex' : 'base64');
      const msg = randomBytes(i * 11);
      const user = Sm9SignUserKey.fromBytes(master.extract(id).toBytes());
      const der = sm9Sign(pub, user, msg);
      assert.ok(sm9Verify(pub, id, msg, der), `id ${id}`);
      assert.equal(sm9Verify(pub, `${id}x`, msg, der), false);
    }
    assert.deepEqual(
      Sm9SignMasterKey.fromBytes(master.toBytes()).publicKey.toBytes(),
      master.publicKey.toBytes(),
    );
  });

  it('KEM round-trips for random IDs; a wrong ID or another C gives another key', () => {
    const master = Sm9EncMasterKey.generate();
    for (let i = 0; i < 6; i++) {
      const id = `meter-${randomBytes(4).toString('hex')}`;
      const { key, encapsulation } = sm9Encapsulate(master.publicKey, id, 16 + i);
      const user = master.extract(id);
      assert.deepEqual(sm9Decapsulate(user, id, encapsulation, 16 + i), key);
      assert.notDeepEqual(sm9Decapsulate(master.extract('other'), 'other', encapsulation, 16 + i), key);
    }
    const { encapsulation } = sm9Encapsulate(master.publicKey, 'x', 16);
    const bad = Uint8Array.from(encapsulation);
    bad[10] = (bad[10] as number) ^ 1;
    assert.throws(
      () => sm9Decapsulate(master.extract('x'), 'x', bad, 16),
      (e: unknown) => isKapokError(e, 'KAPOK_GM_DECRYPT_FAILED'),
    );
  });
});

describe('SM9 precomputation built in slices', () => {
  it('warmStep builds the g table a row at a time; its powers equal the table built at once', () => {
    const ks = hex(sv.ks, 32);
    const sliced = Sm9SignMasterKey.fromBytes(ks).publicKey;
    let steps = 0;
    while (!sliced.warmStep()) steps += 1;
    // The pairing, then 37 rows of a 7-bit table over 257 bits (the last call reports it whole).
    assert.equal(steps, 37);
    assert.equal(sliced.warmStep(), true);
    const whole = Sm9SignMasterKey.fromBytes(ks).publicKey;
    for (const e of [1n, 2n, N - 1n, BigInt(`0x${toHex(randomBytes(32))}`) % N])
      assert.equal(toHex(gtToBytes(sliced.gt().pow(e))), toHex(gtToBytes(whole.gt().pow(e))));
  });

  it('a half-built table is finished by its first use, and a signature made then verifies', () => {
    const master = Sm9SignMasterKey.fromBytes(hex(sv.ks, 32));
    const pk = master.publicKey;
    for (let i = 0; i < 5; i++) assert.equal(pk.warmStep(), false);
    const user = master.extract('Alice');
    const msg = new TextEncoder().encode('half-built');
    const sig = sm9Sign(pk, user, msg);
    assert.equal(pk.warmStep(), true);
    assert.ok(sm9Verify(pk, 'Alice', msg, sig));
    assert.equal(sm9Verify(pk, 'Bob', msg, sig), false);
  });
});
