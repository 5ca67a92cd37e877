import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

/**
 * Generates src/crypto/sm9/wasm/field.generated.ts: SM9 field and tower arithmetic in WebAssembly,
 * emitted as WAT (loops unrolled here, in JS) and assembled by the exact-pinned `wabt` dev
 * dependency. The bytes are committed inlined as base64, so `npm ci`, `npm test`, `npm run build`
 * and the release need no extra step; test/gm/sm9-wasm.test.ts checks that regenerating gives the
 * same bytes. Run: node --import tsx scripts/gen-sm9-wasm.ts
 *
 * Layout in linear memory: Fp = 8 little-endian 32-bit limbs in Montgomery form (R = 2^261, the
 * radix of fp_mul's nine 29-bit limbs), fully reduced into [0, p). Fp2 = [re, u-part] (64 bytes, u^2 = -2); Fp4 = [x0, x1] (128 bytes,
 * v^2 = u); Fp12 = [A0, A1, A2] (384 bytes, w^3 = v). Every function takes byte offsets and may
 * write over its inputs (inputs are read, or copied to scratch, before the output is written).
 * No branch or memory address depends on a value: reductions select with masks.
 */

const P = 0xb640000002a3a6f1d603ab4ff58ec74521f2934b1a7aeedbe56f9b27e351457dn;
const L = 8;
const limbsOf = (x: bigint) =>
  Array.from({ length: L }, (_, i) => Number((x >> BigInt(32 * i)) & 0xffffffffn));
const PL = limbsOf(P);

// Scratch regions, one per level so that a function's callees never write where it keeps values.
export const LAYOUT = {
  s2: 1024, // Fp2 scratch (256 bytes)
  s4: 2048, // Fp4 scratch (512 bytes)
  s12: 4096, // Fp12 scratch (1,152 bytes)
  sl: 6144, // line scratch (192 bytes)
  frob: 8192, // Frobenius constants, 3 x 6 Fp2, written by the loader
  heap: 16384, // first byte JS may use
  pages: 4,
} as const;

const MASK = 'i64.const 0xffffffff i64.and';

/**
 * Montgomery product with R = 2^261 on 29-bit limbs (9 of them), product scanning: a column holds
 * at most 18 products below 2^58, so it accumulates in one u64 with no carry handling per product
 * (2 operations per product against 5 for 32-bit limbs, where every product needs its carry split
 * off). Operands are unpacked from, and the result packed back into, the 8 x 32-bit storage form.
 */
const W = 29;
const M29 = 0x1fffffff;
const P29 = Array.from({ length: 9 }, (_, i) => Number((P >> BigInt(W * i)) & BigInt(M29)));
// -p^-1 mod 2^29 (Newton iteration on the low limb).
const PINV29 = (() => {
  const p0 = BigInt(P29[0] as number);
  let x = 1n;
  for (let i = 0; i < 6; i++) x = (x * (2n - p0 * x)) & BigInt(M29);
  return Number((1n << 29n) - x);
})();

function fpMul29(): string {
  const o: string[] = [];
  const unpack = (src: string, dst: string) => {
    for (let k = 0; k < 9; k++) {
      const bit = W * k;
      const mask = k === 8 ? 0xffffff : M29; // limb 8 holds bits 232..255 only
      o.push(
        `local.get $${src} i64.load offset=${bit >> 3} i64.const ${bit & 7} i64.shr_u i64.const ${mask} i64.and local.set $${dst}${k}`,
      );
    }
  };
  unpack('a', 'a');
  unpack('b', 'b');
  o.push('i64.const 0 local.set $t');
  for (let k = 0; k <= 16; k++) {
    const terms: string[] = [];
    for (let i = Math.max(0, k - 8); i <= Math.min(8, k); i++) {
      terms.push(`local.get $a${i} local.get $b${k - i} i64.mul`);
    }
    // m_i p_{k-i} for the m_i already known (i < k); m_k p_0 is added once m_k is.
    for (let i = Math.max(0, k - 8); i <= Math.min(8, k - 1); i++)
      terms.push(`local.get $m${i} i64.const ${P29[k - i]} i64.mul`);
    o.push(`local.get $t ${terms.map((t) => `${t} i64.add`).join(' ')} local.set $t`);
    if (k <= 8) {
      o.push(
        `local.get $t i64.const ${M29} i64.and i64.const ${PINV29} i64.mul i64.const ${M29} i64.and local.set $m${k}`,
      );
      o.push(
        `local.get $t local.get $m${k} i64.const ${P29[0]} i64.mul i64.add i64.const ${W} i64.shr_u local.set $t`,
      );
    } else {
      o.push(
        `local.get $t i64.const ${M29} i64.and local.set $r${k - 9} local.get $t i64.const ${W} i64.shr_u local.set $t`,
      );
    }
  }
  o.push('local.get $t local.set $r8');
  // r (< 2p) minus p unless that borrows, limb by limb with a mask select.
  o.push('i64.const 0 local.set $c');
  for (let j = 0; j < 9; j++) {
    o.push(`local.get $r${j} i64.const ${P29[j]} i64.sub local.get $c i64.sub local.set $x`);
    o.push(
      `local.get $x i64.const ${M29} i64.and local.set $d${j} local.get $x i64.const 63 i64.shr_u local.set $c`,
    );
  }
  o.push('local.get $c i32.wrap_i64 local.set $keep');
  // Pack 9 x 29 bits into 8 x 32-bit words.
  let bits = 0;
  let word = 0;
  o.push('i64.const 0 local.set $x');
  for (let k = 0; k < 9; k++) {
    o.push(
      `local.get $x local.get $r${k} local.get $d${k} local.get $keep select i64.const ${bits} i64.shl i64.or local.set $x`,
    );
    bits += W;
    while (bits >= 32 && word < 8) {
      o.push(
        `local.get $r local.get $x i64.store32 offset=${4 * word} local.get $x i64.const 32 i64.shr_u local.set $x`,
      );
      bits -= 32;
      word++;
    }
  }
  const body = o.join('\n');
  const ps = ['r', 'a', 'b'].map((p) => `(param $${p} i32)`).join(' ');
  const locals = [
    ...range(9).map((j) => `a${j}`),
    ...range(9).map((j) => `b${j}`),
    ...range(9).map((j) => `m${j}`),
    ...range(9).map((j) => `r${j}`),
    ...range(9).map((j) => `d${j}`),
    't',
    'c',
    'x',
  ]
    .map((l) => `(local $${l} i64)`)
    .join(' ');
  return `(func $fp_mul (export "fp_mul") ${ps} ${locals} (local $keep i32)\n${body})`;
}

/** t (t0..t7 with carry limb t8, value < 2p) minus p if that does not go negative, stored at r (fp_add). */
function reduceOnce(): string {
  const o: string[] = ['i64.const 0 local.set $c'];
  for (let j = 0; j < L; j++) {
    o.push(`local.get $t${j} i64.const ${PL[j]} i64.sub local.get $c i64.sub local.set $x`);
    o.push(`local.get $x ${MASK} local.set $d${j} local.get $x i64.const 63 i64.shr_u local.set $c`);
  }
  // keep t when t8 - borrow < 0, i.e. t < p
  o.push('local.get $t8 local.get $c i64.sub i64.const 0 i64.lt_s i64.extend_i32_u local.set $x');
  for (let j = 0; j < L; j++)
    o.push(
      `local.get $r local.get $t${j} local.get $d${j} local.get $x i32.wrap_i64 select i64.store32 offset=${4 * j}`,
    );
  return o.join('\n');
}

function fpAdd(): string {
  const o: string[] = ['i64.const 0 local.set $c'];
  for (let j = 0; j < L; j++) {
    o.push(
      `local.get $a i64.load32_u offset=${4 * j} local.get $b i64.load32_u offset=${4 * j} i64.add local.get $c i64.add local.set $x`,
    );
    o.push(`local.get $x ${MASK} local.set $t${j} local.get $x i64.const 32 i64.shr_u local.set $c`);
  }
  o.push('local.get $c local.set $t8');
  o.push(reduceOnce());
  return func('fp_add', ['r', 'a', 'b'], o.join('\n'), [
    ...range(L + 1).map((j) => `t${j}`),
    ...range(L).map((j) => `d${j}`),
    'c',
    'x',
  ]);
}

/** r = a - b (or -b when a is null), adding p back under a mask when it borrows. */
function fpSub(name: string, neg: boolean): string {
  const o: string[] = ['i64.const 0 local.set $c'];
  for (let j = 0; j < L; j++) {
    const a = neg ? 'i64.const 0' : `local.get $a i64.load32_u offset=${4 * j}`;
    o.push(`${a} local.get $b i64.load32_u offset=${4 * j} i64.sub local.get $c i64.sub local.set $x`);
    o.push(`local.get $x ${MASK} local.set $t${j} local.get $x i64.const 63 i64.shr_u local.set $c`);
  }
  o.push('i64.const 0 local.get $c i64.sub local.set $m');
  o.push('i64.const 0 local.set $c');
  for (let j = 0; j < L; j++) {
    o.push(
      `local.get $t${j} i64.const ${PL[j]} local.get $m i64.and i64.add local.get $c i64.add local.set $x`,
    );
    o.push(
      `local.get $r local.get $x i64.store32 offset=${4 * j} local.get $x i64.const 32 i64.shr_u local.set $c`,
    );
  }
  return func(name, neg ? ['r', 'b'] : ['r', 'a', 'b'], o.join('\n'), [
    ...range(L).map((j) => `t${j}`),
    'c',
    'x',
    'm',
  ]);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function func(name: string, params: string[], body: string, locals: string[] = []): string {
  const ps = params.map((p) => `(param $${p} i32)`).join(' ');
  const ls = locals.map((l) => `(local $${l} i64)`).join(' ');
  return `(func $${name} (export "${name}") ${ps} ${ls}\n${body})`;
}

/** An address: a number (absolute) or "param" / "param+offset". */
type Addr = number | string;
function addr(x: Addr): string {
  if (typeof x === 'number') return `i32.const ${x}`;
  const [name, off] = x.split('+');
  return off ? `local.get $${name} i32.const ${off} i32.add` : `local.get $${name}`;
}
const at = (x: Addr, off: number): Addr => {
  if (typeof x === 'number') return x + off;
  const [name, o] = x.split('+');
  const total = Number(o ?? 0) + off;
  return total ? `${name}+${total}` : (name as string);
};
const call = (name: string, ...args: Addr[]) => `${args.map(addr).join(' ')} call $${name}`;

function copy(name: string, bytes: number): string {
  const o: string[] = [];
  for (let j = 0; j < bytes; j += 8)
    o.push(`local.get $r local.get $a i64.load offset=${j} i64.store offset=${j}`);
  return func(name, ['r', 'a'], o.join('\n'));
}

/** Componentwise ops at a level built from the level below (size = bytes of one half). */
function lift(name: string, below: string, half: number, params: string[]): string {
  const lo = params.map((p) => p);
  const hi = params.map((p) => at(p, half));
  return func(name, params, [call(below, ...lo), call(below, ...hi)].join('\n'));
}

const FP = 32;
const F2 = 64;
const F4 = 128;

function fp2(): string[] {
  const s = LAYOUT.s2;
  const out: string[] = [];
  // (a0 + a1 u)(b0 + b1 u) = a0 b0 - 2 a1 b1 + ((a0 + a1)(b0 + b1) - a0 b0 - a1 b1) u
  out.push(
    func(
      'f2_mul',
      ['r', 'a', 'b'],
      [
        call('fp_mul', s, 'a', 'b'),
        call('fp_mul', s + FP, 'a+32', 'b+32'),
        call('fp_add', s + 2 * FP, 'a', 'a+32'),
        call('fp_add', s + 3 * FP, 'b', 'b+32'),
        call('fp_mul', s + 2 * FP, s + 2 * FP, s + 3 * FP),
        call('fp_sub', s + 2 * FP, s + 2 * FP, s),
        call('fp_sub', 'r+32', s + 2 * FP, s + FP),
        call('fp_sub', 'r', s, s + FP),
        call('fp_sub', 'r', 'r', s + FP),
      ].join('\n'),
    ),
  );
  // (a0 + a1 u)^2 = (a0 + a1)(a0 - 2 a1) + a0 a1 + 2 a0 a1 u
  out.push(
    func(
      'f2_sqr',
      ['r', 'a'],
      [
        call('fp_mul', s, 'a', 'a+32'),
        call('fp_add', s + FP, 'a', 'a+32'),
        call('fp_sub', s + 2 * FP, 'a', 'a+32'),
        call('fp_sub', s + 2 * FP, s + 2 * FP, 'a+32'),
        call('fp_mul', s + FP, s + FP, s + 2 * FP),
        call('fp_add', 'r', s + FP, s),
        call('fp_add', 'r+32', s, s),
      ].join('\n'),
    ),
  );
  out.push(lift('f2_add', 'fp_add', FP, ['r', 'a', 'b']));
  out.push(lift('f2_sub', 'fp_sub', FP, ['r', 'a', 'b']));
  out.push(lift('f2_neg', 'fp_neg', FP, ['r', 'a']));
  out.push(
    func('f2_conj', ['r', 'a'], [call('fp_copy', 'r', 'a'), call('fp_neg', 'r+32', 'a+32')].join('\n')),
  );
  out.push(
    func(
      'f2_mulFp',
      ['r', 'a', 'k'],
      [call('fp_mul', 'r', 'a', 'k'), call('fp_mul', 'r+32', 'a+32', 'k')].join('\n'),
    ),
  );
  // a u = -2 a1 + a0 u
  out.push(
    func(
      'f2_mulU',
      ['r', 'a'],
      [call('fp_add', s, 'a+32', 'a+32'), call('fp_copy', 'r+32', 'a'), call('fp_neg', 'r', s)].join('\n'),
    ),
  );
  out.push(copy('f2_copy', F2));
  return out;
}

function fp4(): string[] {
  const s = LAYOUT.s4;
  const out: string[] = [];
  // Karatsuba: (a0 + a1 v)(b0 + b1 v) = a0 b0 + u a1 b1 + ((a0 + a1)(b0 + b1) - a0 b0 - a1 b1) v
  out.push(
    func(
      'f4_mul',
      ['r', 'a', 'b'],
      [
        call('f2_mul', s, 'a', 'b'),
        call('f2_mul', s + F2, 'a+64', 'b+64'),
        call('f2_add', s + 2 * F2, 'a', 'a+64'),
        call('f2_add', s + 3 * F2, 'b', 'b+64'),
        call('f2_mul', s + 2 * F2, s + 2 * F2, s + 3 * F2),
        call('f2_sub', s + 2 * F2, s + 2 * F2, s),
        call('f2_sub', 'r+64', s + 2 * F2, s + F2),
        call('f2_mulU', s + F2, s + F2),
        call('f2_add', 'r', s, s + F2),
      ].join('\n'),
    ),
  );
  out.push(
    func(
      'f4_sqr',
      ['r', 'a'],
      [
        call('f2_sqr', s, 'a'),
        call('f2_sqr', s + F2, 'a+64'),
        call('f2_add', s + 2 * F2, 'a', 'a+64'),
        call('f2_sqr', s + 2 * F2, s + 2 * F2),
        call('f2_sub', s + 2 * F2, s + 2 * F2, s),
        call('f2_sub', 'r+64', s + 2 * F2, s + F2),
        call('f2_mulU', s + F2, s + F2),
        call('f2_add', 'r', s, s + F2),
      ].join('\n'),
    ),
  );
  // v (x0 + x1 v) = u x1 + x0 v
  out.push(
    func(
      'f4_mulV',
      ['r', 'a'],
      [call('f2_copy', s, 'a'), call('f2_mulU', 'r', 'a+64'), call('f2_copy', 'r+64', s)].join('\n'),
    ),
  );
  // an Fp4 times an Fp2
  out.push(
    func(
      'f4_mulF2',
      ['r', 'a', 'b'],
      [call('f2_mul', 'r', 'a', 'b'), call('f2_mul', 'r+64', 'a+64', 'b')].join('\n'),
    ),
  );
  out.push(lift('f4_add', 'f2_add', F2, ['r', 'a', 'b']));
  out.push(lift('f4_sub', 'f2_sub', F2, ['r', 'a', 'b']));
  out.push(copy('f4_copy', F4));
  return out;
}

function fp12(): string[] {
  const s = LAYOUT.s12;
  const q = (i: number) => s + i * F4;
  const out: string[] = [];
  const A = (p: string, i: number) => at(p, i * F4);
  // Karatsuba over w^3 = v.
  out.push(
    func(
      'f12_mul',
      ['r', 'a', 'b'],
      [
        call('f4_mul', q(0), 'a', 'b'),
        call('f4_mul', q(1), A('a', 1), A('b', 1)),
        call('f4_mul', q(2), A('a', 2), A('b', 2)),
        call('f4_add', q(3), A('a', 1), A('a', 2)),
        call('f4_add', q(4), A('b', 1), A('b', 2)),
        call('f4_mul', q(5), q(3), q(4)),
        call('f4_add', q(3), 'a', A('a', 1)),
        call('f4_add', q(4), 'b', A('b', 1)),
        call('f4_mul', q(6), q(3), q(4)),
        call('f4_add', q(3), 'a', A('a', 2)),
        call('f4_add', q(4), 'b', A('b', 2)),
        call('f4_mul', q(7), q(3), q(4)),
        // C0 = v0 + v((A1+A2)(B1+B2) - v1 - v2)
        call('f4_sub', q(5), q(5), q(1)),
        call('f4_sub', q(5), q(5), q(2)),
        call('f4_mulV', q(5), q(5)),
        call('f4_add', 'r', q(0), q(5)),
        // C1 = (A0+A1)(B0+B1) - v0 - v1 + v v2
        call('f4_sub', q(6), q(6), q(0)),
        call('f4_sub', q(6), q(6), q(1)),
        call('f4_mulV', q(3), q(2)),
        call('f4_add', A('r', 1), q(6), q(3)),
        // C2 = (A0+A2)(B0+B2) - v0 - v2 + v1
        call('f4_sub', q(7), q(7), q(0)),
        call('f4_sub', q(7), q(7), q(2)),
        call('f4_add', A('r', 2), q(7), q(1)),
      ].join('\n'),
    ),
  );
  // Chung–Hasan SQR2: C0 = A0^2 + v 2A1A2, C1 = 2A0A1 + v A2^2, C2 = A1^2 + 2A0A2.
  out.push(
    func(
      'f12_sqr',
      ['r', 'a'],
      [
        call('f4_add', q(3), 'a', 'a'),
        call('f4_mul', q(1), q(3), A('a', 1)),
        call('f4_mul', q(5), q(3), A('a', 2)),
        call('f4_add', q(3), A('a', 2), A('a', 2)),
        call('f4_mul', q(3), A('a', 1), q(3)),
        call('f4_sqr', q(0), 'a'),
        call('f4_sqr', q(2), A('a', 1)),
        call('f4_sqr', q(4), A('a', 2)),
        call('f4_mulV', q(3), q(3)),
        call('f4_add', 'r', q(0), q(3)),
        call('f4_mulV', q(4), q(4)),
        call('f4_add', A('r', 1), q(1), q(4)),
        call('f4_add', A('r', 2), q(2), q(5)),
      ].join('\n'),
    ),
  );
  // f times the line L0 + l2 w^2 with L0 = l0 + l3 v (Fp4) and l2 in Fp2:
  // C0 = A0 L0 + v A1 l2, C1 = A1 L0 + v A2 l2, C2 = A2 L0 + A0 l2.
  out.push(
    func(
      'f12_mulLine',
      ['r', 'a', 'l', 'm'],
      [
        call('f4_mul', q(0), 'a', 'l'),
        call('f4_mul', q(1), A('a', 1), 'l'),
        call('f4_mul', q(2), A('a', 2), 'l'),
        call('f4_mulF2', q(3), 'a', 'm'),
        call('f4_mulF2', q(4), A('a', 1), 'm'),
        call('f4_mulF2', q(5), A('a', 2), 'm'),
        call('f4_mulV', q(4), q(4)),
        call('f4_add', 'r', q(0), q(4)),
        call('f4_mulV', q(5), q(5)),
        call('f4_add', A('r', 1), q(1), q(5)),
        call('f4_add', A('r', 2), q(2), q(3)),
      ].join('\n'),
    ),
  );
  // A prepared line [l0, a, b] (Fp2 each) at P = (x, y): L0 = l0 + (b y) v, l2 = a x.
  const sl = LAYOUT.sl;
  out.push(
    func(
      'f12_mulLineAt',
      ['r', 'f', 'line', 'x', 'y'],
      [
        call('f2_copy', sl, 'line'),
        call('f2_mulFp', sl + F2, 'line+128', 'y'),
        call('f2_mulFp', sl + 2 * F2, 'line+64', 'x'),
        call('f12_mulLine', 'r', 'f', sl, sl + 2 * F2),
      ].join('\n'),
    ),
  );
  // f^(p^6): odd powers of w change sign; c1 = A1.x0, c3 = A0.x1, c5 = A2.x1.
  out.push(
    func(
      'f12_conj',
      ['r', 'a'],
      [
        call('f2_copy', 'r', 'a'),
        call('f2_neg', 'r+64', 'a+64'),
        call('f2_neg', 'r+128', 'a+128'),
        call('f2_copy', 'r+192', 'a+192'),
        call('f2_copy', 'r+256', 'a+256'),
        call('f2_neg', 'r+320', 'a+320'),
      ].join('\n'),
    ),
  );
  // Granger–Scott: C0 = 3A0^2 - 2conj(A0), C1 = 3v A2^2 + 2conj(A1), C2 = 3A1^2 - 2conj(A2),
  // conj(x0 + x1 v) = x0 - x1 v. gs(dst, T, X): dst = 3T - 2conj(X) or, with plus, 3T + 2conj(X).
  const gs = (dst: Addr, t: number, x: Addr, plus: boolean) => {
    const [lo, hi] = plus ? ['f2_add', 'f2_sub'] : ['f2_sub', 'f2_add'];
    return [
      call(lo, s + 8 * F4, t, x),
      call('f2_add', s + 8 * F4, s + 8 * F4, s + 8 * F4),
      call('f2_add', dst, s + 8 * F4, t),
      call(hi, s + 8 * F4, t + F2, at(x, F2)),
      call('f2_add', s + 8 * F4, s + 8 * F4, s + 8 * F4),
      call('f2_add', at(dst, F2), s + 8 * F4, t + F2),
    ].join('\n');
  };
  const c12 = (full: boolean) =>
    [
      full ? call('f4_sqr', q(0), 'a') : '',
      call('f4_sqr', q(1), A('a', 1)),
      call('f4_sqr', q(2), A('a', 2)),
      call('f4_mulV', q(2), q(2)),
      full ? gs('r', q(0), 'a', false) : '',
      gs(A('r', 1), q(2), A('a', 1), true),
      gs(A('r', 2), q(1), A('a', 2), false),
    ].join('\n');
  out.push(func('f12_cycSqr', ['r', 'a'], c12(true)));
  // Karabina-style compressed squaring: C1 and C2 depend on A1, A2 only; A0 is left as it was.
  out.push(func('f12_cSqr', ['r', 'a'], c12(false)));
  // f^(p^j): c_k -> conj^j(c_k) FROB[j][k]; consts at frob + (j-1)·384 + 64k, c_k at 128k (k < 3)
  // or 128(k-3) + 64.
  for (const j of [1, 2, 3]) {
    const body: string[] = [];
    for (let k = 0; k < 6; k++) {
      const off = k < 3 ? 128 * k : 128 * (k - 3) + 64;
      const src = at('a', off);
      const dst = at('r', off);
      if (j === 2) body.push(call('f2_mul', dst, src, LAYOUT.frob + (j - 1) * 384 + 64 * k));
      else {
        body.push(call('f2_conj', s + 8 * F4, src));
        body.push(call('f2_mul', dst, s + 8 * F4, LAYOUT.frob + (j - 1) * 384 + 64 * k));
      }
    }
    out.push(func(`f12_frob${j}`, ['r', 'a'], body.join('\n')));
  }
  out.push(copy('f12_copy', 3 * F4));
  return out;
}

export function sm9Wat(): string {
  return [
    '(module',
    `(memory (export "memory") ${LAYOUT.pages})`,
    fpMul29(),
    fpAdd(),
    fpSub('fp_sub', false),
    fpSub('fp_neg', true),
    copy('fp_copy', FP),
    ...fp2(),
    ...fp4(),
    ...fp12(),
    ')',
  ].join('\n');
}

export async function sm9WasmBytes(): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('sm9.wat', sm9Wat());
  mod.validate();
  const { buffer } = mod.toBinary({ write_debug_names: false });
  mod.destroy();
  return buffer;
}

export function generatedSource(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines = b64.match(/.{1,100}/g) ?? [];
  return [
    '// Generated by scripts/gen-sm9-wasm.ts: do not edit. test/gm/sm9-wasm.test.ts checks it is current.',
    'export const SM9_WASM_LAYOUT = {',
    ...Object.entries(LAYOUT).map(([k, v]) => `  ${k}: ${v},`),
    '} as const;',
    'export const SM9_WASM_BASE64 =',
    `${lines.map((l) => `  '${l}'`).join(' +\n')};`,
    '',
  ].join('\n');
}

export const GENERATED_PATH = 'src/crypto/sm9/wasm/field.generated.ts';

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(GENERATED_PATH, generatedSource(await sm9WasmBytes()));
  console.log(`wrote ${GENERATED_PATH}`);
}
