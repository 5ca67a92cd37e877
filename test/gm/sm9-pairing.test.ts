import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { bytesToBigint } from '../../src/crypto/bytes.js';
import { G2Table, GtTable, signedDigits } from '../../src/crypto/sm9/fixed.js';
import { N, P } from '../../src/crypto/sm9/fp2.js';
import {
  fp12cycSqr,
  fp12eq,
  fp12frob,
  fp12inv,
  fp12isOne,
  fp12mul,
  fp12One,
  fp12pow,
  fp12sqr,
} from '../../src/crypto/sm9/fp12.js';
import { g2eq, g2fromAffine, g2inSubgroup, g2mul, g2toAffine } from '../../src/crypto/sm9/g2.js';
import { pairing } from '../../src/crypto/sm9/pairing.js';
import { G1, P2 } from '../../src/crypto/sm9/params.js';

const scalar = () => (bytesToBigint(randomBytes(32)) % (N - 1n)) + 1n;
const p1 = G1.BASE.toAffine();
const e = pairing(p1.x, p1.y, P2);

describe('SM9 pairing algebra', () => {
  it('e(P1, P2) is a non-trivial N-th root of unity', () => {
    assert.equal(fp12isOne(e), false);
    assert.ok(fp12isOne(fp12pow(e, N)));
  });

  it('is bilinear: e([a]P1, [b]P2) = e(P1, P2)^(ab)', () => {
    const a = scalar();
    const b = scalar();
    const ap = G1.BASE.multiply(a).toAffine();
    const bq = g2toAffine(g2mul(g2fromAffine(P2), b));
    assert.ok(bq);
    assert.ok(fp12eq(pairing(ap.x, ap.y, bq), fp12pow(e, (a * b) % N)));
  });

  it('field helpers agree with their definitions', () => {
    const x = e.map((v, i) => (v * BigInt(i + 7)) % P);
    assert.ok(fp12isOne(fp12mul(x, fp12inv(x))));
    assert.ok(fp12eq(fp12sqr(x), fp12mul(x, x)));
    assert.ok(fp12eq(fp12frob(x, 1), fp12pow(x, P)));
    assert.ok(fp12eq(fp12frob(x, 2), fp12frob(fp12frob(x, 1), 1)));
    assert.ok(fp12eq(fp12frob(x, 3), fp12frob(fp12frob(x, 2), 1)));
    // Granger–Scott squaring holds in the cyclotomic subgroup, where pairing values live.
    assert.ok(fp12eq(fp12cycSqr(e), fp12sqr(e)));
    assert.ok(fp12eq(fp12pow(x, 0n), fp12One()));
  });

  it('fixed-base tables agree with plain exponentiation and multiplication', () => {
    const gt = new GtTable(e);
    const g2 = new G2Table(P2);
    for (const k of [1n, 2n, 8n, 9n, N - 1n, scalar(), scalar()]) {
      assert.ok(fp12eq(gt.pow(k), fp12pow(e, k)), `gt ${k}`);
      assert.ok(g2eq(g2.mul(k), g2mul(g2fromAffine(P2), k)), `g2 ${k}`);
    }
    for (const w of [4, 6])
      for (const k of [0n, 7n, 8n, 31n, 32n, 63n, 0x8888n, N - 1n, scalar()]) {
        const d = signedDigits(k, w);
        assert.ok(d.every((x) => Math.abs(x) <= 2 ** (w - 1)));
        assert.equal(
          d.reduce((acc, di, i) => acc + BigInt(di) * 2n ** BigInt(w * i), 0n),
          k,
        );
      }
  });

  it('P2 and [k]P2 are in G2; a point off the twist is not', () => {
    assert.ok(g2inSubgroup(P2));
    assert.equal(g2inSubgroup({ x: P2.x, y: [P2.y[0], (P2.y[1] + 1n) % P] }), false);
  });
});
