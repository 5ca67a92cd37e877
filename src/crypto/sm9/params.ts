import { weierstrass } from '@noble/curves/abstract/weierstrass.js';
import type { Fp2 } from './fp2.js';
import { N, P } from './fp2.js';
import type { G2Affine } from './g2.js';

/** SM9 BN256 curve parameters (GM/T 0044-2016 part 5). */

/** G1 = E(Fp): y^2 = x^3 + 5, on @noble/curves' Weierstrass arithmetic (cofactor 1). */
export const G1 = weierstrass({
  p: P,
  n: N,
  h: 1n,
  a: 0n,
  b: 5n,
  Gx: 0x93de051d62bf718ff5ed0704487d01d6e1e4086909dc3280e8c4e4817c66ddddn,
  Gy: 0x21fe8dda4f21e607631065125c395bbc1c1c00cbfa6024350c464cd70a3ea616n,
});
export type G1Point = InstanceType<typeof G1>;

/** The standard prints Fp2 values u-coefficient first; we keep [re, u-part]. */
const fp2 = (uPart: bigint, re: bigint): Fp2 => [re, uPart];

export const P2: G2Affine = {
  x: fp2(
    0x85aef3d078640c98597b6027b441a01ff1dd2c190f5e93c454806c11d8806141n,
    0x3722755292130b08d2aab97fd34ec120ee265948d19c17abf9b7213baf82d65bn,
  ),
  y: fp2(
    0x17509b092e845c1266ba0d262cbee6ed0736a96fa347c8bd856dc76b84ebeb96n,
    0xa7cf28d519be3da65f3170153d278ff247efba98a71a08116215bba5c999a7c7n,
  ),
};
