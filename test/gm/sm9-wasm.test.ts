import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GENERATED_PATH, generatedSource, sm9WasmBytes } from '../../scripts/gen-sm9-wasm.js';
import { bytesToBigint } from '../../src/crypto/bytes.js';
import { GtTable, gtTable, signedDigits } from '../../src/crypto/sm9/fixed.js';
import { type Fp2, f2mul, f2sqr, N, P, T } from '../../src/crypto/sm9/fp2.js';
import {
  type Fp12,
  fp12conj,
  fp12cycPow,
  fp12cycSqr,
  fp12eq,
  fp12frob,
  fp12mul,
  fp12mulLine,
  fp12One,
  fp12sqr,
  naf,
} from '../../src/crypto/sm9/fp12.js';
import { g2fromAffine, g2mul, g2toAffine } from '../../src/crypto/sm9/g2.js';
import { gtToBytes, h2 } from '../../src/crypto/sm9/hash.js';
import { Sm9SignMasterKey, sm9Sign, sm9Verify } from '../../src/crypto/sm9/index.js';
import { finalExp, millerLoop, prepareG2 } from '../../src/crypto/sm9/pairing.js';
import { G1, P2 } from '../../src/crypto/sm9/params.js';
import { decodeSm9Signature } from '../../src/crypto/sm9/sign.js';
import { SM9_WASM_BASE64 } from '../../src/crypto/sm9/wasm/field.generated.js';
import { readFp, readFp12, slot, sm9Field, writeFp, writeFp12 } from '../../src/crypto/sm9/wasm/field.js';
import { GtTableWasm } from '../../src/crypto/sm9/wasm/gt-table.js';
import { cycPowWasm, finalExpWasm, millerLoopWasm, pairPrepared } from '../../src/crypto/sm9/wasm/pairing.js';

// The wasm field and tower (src/crypto/sm9/wasm/) against the bigint code they replace on the hot
// path (src/crypto/sm9/fp2.ts, fp12.ts, pairing.ts, fixed.ts), which stays as the reference and as
// the path for processes without WebAssembly. The GM/T 0044 examples run on wasm in sm9.test.ts.
const rnd = () => bytesToBigint(randomBytes(32)) % P;
const scalar = () => (bytesToBigint(randomBytes(32)) % (N - 1n)) + 1n;
const EDGES = [
  0n,
  1n,
  2n,
  P - 1n,
  P - 2n,
  (P + 1n) / 2n,
  1n << 255n,
  (1n << 255n) + 1n,
  P - (1n << 32n),
  0xffffffffn,
];
const F = sm9Field();
const [A, B, R] = [slot(22), slot(22) + 32, slot(22) + 64];
const rand12 = (): Fp12 => Array.from({ length: 12 }, rnd);
const p1 = G1.BASE.toAffine();
const g = finalExp(millerLoop(prepareG2(P2), p1.x, p1.y));

// Elements of the cyclotomic subgroup, the bigint way.
const bigTable = new GtTable(g);
const old12pow = (_base: Fp12, e: bigint) => bigTable.pow(e);

function f2at(off: number): Fp2 {
  return [readFp(off), readFp(off + 32)];
}

describe('SM9 wasm field', () => {
  it('regenerating the module gives the committed bytes', async () => {
    const bytes = await sm9WasmBytes();
    assert.equal(Buffer.from(bytes).toString('base64'), SM9_WASM_BASE64);
    assert.equal(generatedSource(bytes), readFileSync(GENERATED_PATH, 'utf8'));
  });

  it('Fp mul, add, sub and neg agree with bigint on edge cases (0, 1, p-1, >= 2^255) and random values', () => {
    const values = [...EDGES, ...Array.from({ length: 40 }, rnd)];
    const md = (x: bigint) => ((x % P) + P) % P;
    for (const a of values)
      for (const b of EDGES.concat(rnd())) {
        writeFp(A, a);
        writeFp(B, b);
        assert.equal(readFp(A), md(a), `round trip ${a}`);
        F.fp_mul(R, A, B);
        assert.equal(readFp(R), md(a * b), `${a} * ${b}`);
        F.fp_mul(R, A, A);
        assert.equal(readFp(R), md(a * a), `${a}^2`);
        F.fp_add(R, A, B);
        assert.equal(readFp(R), md(a + b), `${a} + ${b}`);
        F.fp_sub(R, A, B);
        assert.equal(readFp(R), md(a - b), `${a} - ${b}`);
        F.fp_neg(R, A);
        assert.equal(readFp(R), md(-a), `-${a}`);
        // In place (output over an input) is allowed everywhere.
        F.fp_mul(A, A, B);
        assert.equal(readFp(A), md(a * b));
      }
  });

  it('Fp2 products and squares agree', () => {
    for (let i = 0; i < 50; i++) {
      const x: Fp2 =
        i < EDGES.length ? [EDGES[i] as bigint, EDGES[EDGES.length - 1 - i] as bigint] : [rnd(), rnd()];
      const y: Fp2 = [rnd(), i % 3 ? rnd() : 0n];
      writeFp(A, x[0]);
      writeFp(A + 32, x[1]);
      writeFp(slot(23), y[0]);
      writeFp(slot(23) + 32, y[1]);
      F.f2_mul(slot(23) + 64, A, slot(23));
      assert.deepEqual(f2at(slot(23) + 64), f2mul(x, y));
      F.f2_sqr(slot(23) + 64, A);
      assert.deepEqual(f2at(slot(23) + 64), f2sqr(x));
    }
  });

  it('Fp12 mul, sqr, conj, Frobenius, cyclotomic square and sparse line product agree', () => {
    const [x, y, r] = [slot(22), slot(23), slot(24)];
    for (let i = 0; i < 6; i++) {
      const a = i === 0 ? fp12One() : rand12();
      const b = i === 1 ? Array.from({ length: 12 }, (_, k) => (k % 2 ? P - 1n : 0n)) : rand12();
      writeFp12(x, a);
      writeFp12(y, b);
      F.f12_mul(r, x, y);
      assert.ok(fp12eq(readFp12(r), fp12mul(a, b)), 'mul');
      F.f12_sqr(r, x);
      assert.ok(fp12eq(readFp12(r), fp12sqr(a)), 'sqr');
      F.f12_conj(r, x);
      assert.ok(fp12eq(readFp12(r), fp12conj(a)), 'conj');
      F.f12_frob1(r, x);
      assert.ok(fp12eq(readFp12(r), fp12frob(a, 1)), 'frob1');
      F.f12_frob2(r, x);
      assert.ok(fp12eq(readFp12(r), fp12frob(a, 2)), 'frob2');
      F.f12_frob3(r, x);
      assert.ok(fp12eq(readFp12(r), fp12frob(a, 3)), 'frob3');
      F.f12_mul(x, x, y); // in place
      assert.ok(fp12eq(readFp12(x), fp12mul(a, b)), 'mul in place');
      // Granger–Scott holds in the cyclotomic subgroup only: square a pairing value there.
      const c = old12pow(g, scalar());
      writeFp12(x, c);
      F.f12_cycSqr(r, x);
      assert.ok(fp12eq(readFp12(r), fp12cycSqr(c)), 'cycSqr');
      // A line [l0, a, b] at (xP, yP): f · (l0 + (a xP) w^2 + (b yP) w^3).
      const [l0, la, lb]: [Fp2, Fp2, Fp2] = [
        [rnd(), rnd()],
        [rnd(), rnd()],
        [rnd(), rnd()],
      ];
      const [xP, yP] = [rnd(), rnd()];
      writeFp12(x, a);
      [l0, la, lb].forEach((v, k) => {
        writeFp(y + 64 * k, v[0]);
        writeFp(y + 64 * k + 32, v[1]);
      });
      writeFp(slot(25), xP);
      writeFp(slot(25) + 32, yP);
      F.f12_mulLineAt(r, x, y, slot(25), slot(25) + 32);
      const want = fp12mulLine(
        a,
        l0,
        [(la[0] * xP) % P, (la[1] * xP) % P],
        [(lb[0] * yP) % P, (lb[1] * yP) % P],
      );
      assert.ok(fp12eq(readFp12(r), want), 'line');
    }
  });
});

describe('SM9 pairing on the wasm field', () => {
  it('Miller loop and final exponentiation agree on random points and on non-pairing values', () => {
    for (let i = 0; i < 3; i++) {
      const a = G1.BASE.multiply(scalar()).toAffine();
      const q = g2toAffine(g2mul(g2fromAffine(P2), scalar()));
      assert.ok(q);
      const prepared = prepareG2(q);
      const f = millerLoop(prepared, a.x, a.y);
      assert.ok(fp12eq(millerLoopWasm(prepared, a.x, a.y), f), `Miller loop ${i}`);
      assert.ok(fp12eq(pairPrepared(prepared, a.x, a.y), finalExp(f)), `pairing ${i}`);
      const x = rand12();
      assert.ok(fp12eq(finalExpWasm(x), finalExp(x)), `final exponentiation ${i}`);
    }
  });

  it('cyclotomic powers (compressed runs, decompression, its fallback on 1) agree', () => {
    const x = bigTable.pow(scalar());
    for (const k of [T, 1n, 3n, 1n << 40n, (1n << 40n) + 1n, N - 1n, scalar()]) {
      const want = fp12cycPow(x, k);
      assert.ok(fp12eq(cycPowWasm(x, naf(k)), want), `exponent ${k}`);
    }
    // 1 cannot be decompressed (c1 = 0): the run falls back to plain squarings.
    assert.ok(fp12eq(cycPowWasm(fp12One(), naf(1n << 40n)), fp12One()));
  });

  it('the GT table agrees with the bigint one, on 0, 1, N-1 and random exponents', () => {
    const wasm = new GtTableWasm(g, 7, signedDigits);
    assert.ok(gtTable(g) instanceof GtTableWasm);
    for (const e of [0n, 1n, 2n, N - 1n, N, N + 5n, -3n, scalar(), scalar()])
      assert.ok(fp12eq(wasm.pow(e), bigTable.pow(e)), `g^${e}`);
  });

  it('sign and verify agree with a verification done entirely on bigints', () => {
    const master = Sm9SignMasterKey.generate();
    const user = master.extract('dev-7');
    const pubPoint = master.publicKey.point;
    const big = new GtTable(finalExp(millerLoop(prepareG2(pubPoint), p1.x, p1.y)));
    const prepared = master.publicKey.preparedFor(new TextEncoder().encode('dev-7'), 1);
    assert.ok(prepared);
    for (let i = 0; i < 3; i++) {
      const der = sm9Sign(master.publicKey, user, `m${i}`);
      const sig = decodeSm9Signature(der);
      const s = G1.fromBytes(sig.S).toAffine();
      const w = fp12mul(finalExp(millerLoop(prepared, s.x, s.y)), big.pow(sig.h));
      assert.equal(h2(new TextEncoder().encode(`m${i}`), gtToBytes(w)), sig.h, 'bigint verification');
      assert.equal(sm9Verify(master.publicKey, 'dev-7', `m${i}`, der), true);
      assert.equal(sm9Verify(master.publicKey, 'dev-7', `m${i}!`, der), false);
      assert.equal(sm9Verify(master.publicKey, 'dev-8', `m${i}`, der), false);
    }
  });

  it('without WebAssembly (node --jitless) the bigint path gives the same pairing value', () => {
    const script = [
      "import { prepareG2 } from './src/crypto/sm9/pairing.js';",
      "import { G1, P2 } from './src/crypto/sm9/params.js';",
      "import { wasmAvailable } from './src/crypto/sm9/wasm/field.js';",
      "import { pairPrepared } from './src/crypto/sm9/wasm/pairing.js';",
      'const p = G1.BASE.toAffine();',
      'console.log(JSON.stringify({ wasm: wasmAvailable(), e: pairPrepared(prepareG2(P2), p.x, p.y).map(String) }));',
    ].join('\n');
    const out = execFileSync(
      process.execPath,
      ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const got = JSON.parse(out.trim().split('\n').pop() as string) as { wasm: boolean; e: string[] };
    assert.equal(got.wasm, false);
    assert.deepEqual(got.e.map(BigInt), g);
  });
});
