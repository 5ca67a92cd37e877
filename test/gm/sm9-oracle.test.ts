import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { bytesToBigint } from '../../src/crypto/bytes.js';
import { GtTable } from '../../src/crypto/sm9/fixed.js';
import { N, P, T } from '../../src/crypto/sm9/fp2.js';
import { fp12cycPow, fp12cycSqrN, fp12eq, fp12One } from '../../src/crypto/sm9/fp12.js';
import { g2fromAffine, g2mul, g2toAffine } from '../../src/crypto/sm9/g2.js';
import { finalExp, millerLoop, pairing, prepareG2 } from '../../src/crypto/sm9/pairing.js';
import { G1, P2 } from '../../src/crypto/sm9/params.js';
import * as oldFixed from './sm9-oracle/fixed.js';
import * as old12 from './sm9-oracle/fp12.js';
import * as oldPairing from './sm9-oracle/pairing.js';

// The current pairing, final exponentiation and GT exponentiations against the code they replaced
// (test/gm/sm9-oracle/), on random points and exponents; the GM/T 0044 examples are in sm9.test.ts.
const scalar = () => (bytesToBigint(randomBytes(32)) % (N - 1n)) + 1n;
const p1 = G1.BASE.toAffine();
const e = oldPairing.pairing(p1.x, p1.y, P2);

describe('SM9 pairing against the previous implementation', () => {
  it('e([a]P1, [b]P2) agrees for random a, b, and e(P1, P2) is the same value', () => {
    assert.ok(fp12eq(pairing(p1.x, p1.y, P2), e));
    for (let i = 0; i < 3; i++) {
      const a = G1.BASE.multiply(scalar()).toAffine();
      const q = g2toAffine(g2mul(g2fromAffine(P2), scalar()));
      assert.ok(q);
      const prepared = prepareG2(q);
      const f = millerLoop(prepared, a.x, a.y);
      assert.ok(fp12eq(f, oldPairing.millerLoop(prepared, a.x, a.y)));
      const got = finalExp(f);
      assert.ok(fp12eq(got, oldPairing.finalExp(f)), `pairing ${i}`);
      assert.equal(old12.fp12isOne(got), false);
    }
  });

  it('the final exponentiation agrees on elements that are not pairing values', () => {
    for (let i = 0; i < 3; i++) {
      const x = e.map((v, k) => (v * BigInt(k + 2) + scalar()) % P);
      assert.ok(fp12eq(finalExp(x), oldPairing.finalExp(x)));
    }
  });

  it('exponentiation by t, by random exponents and by compressed runs of squarings agrees', () => {
    const x = old12.fp12cycPow(e, scalar());
    for (const k of [T, 1n, 3n, 1n << 40n, (1n << 40n) + 1n, N - 1n, scalar()])
      assert.ok(fp12eq(fp12cycPow(x, k), old12.fp12cycPow(x, k)), `exponent ${k}`);
    for (const n of [1, 16, 17, 38, 64]) {
      let want = x;
      for (let i = 0; i < n; i++) want = old12.fp12cycSqr(want);
      assert.ok(fp12eq(fp12cycSqrN(x, n), want), `2^${n}`);
    }
    // 1 cannot be decompressed (c1 = 0): the run falls back to plain squarings.
    assert.ok(fp12eq(fp12cycSqrN(fp12One(), 40), fp12One()));
  });

  it('the GT table (7-bit windows) gives what the 6-bit one gave', () => {
    const g = oldPairing.finalExp(oldPairing.millerLoop(prepareG2(P2), p1.x, p1.y));
    const now = new GtTable(g);
    const before = new oldFixed.GtTable(g);
    for (const k of [1n, 63n, 64n, 65n, N - 1n, N - 64n, scalar(), scalar()])
      assert.ok(fp12eq(now.pow(k), before.pow(k)), `g^${k}`);
  });
});
