import type { WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';

/**
 * G as a fresh point, without the window table @noble/curves keeps for BASE: a public key is
 * derived once per key (at generation and at every start's keyring load), and building SM2's
 * 8-bit table for it cost ~0.14 s of CPU natively (with SM9's G1 table, most of the keyring's 2.9 s
 * under qemu-user). The first signature or
 * user-key extraction builds the table when it is needed.
 */
export function baseOnce<P extends WeierstrassPoint<bigint>>(Point: {
  BASE: P;
  fromAffine(a: { x: bigint; y: bigint }): P;
}): P {
  return Point.fromAffine(Point.BASE.toAffine());
}
