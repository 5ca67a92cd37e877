import { randomBytes } from 'node:crypto';
import { KapokError } from '../../core/errors.js';
import { baseOnce } from '../base-point.js';
import { asBytes, bigintToBytes, bytesToBigint, invMod, randomScalar, toHex } from '../bytes.js';
import { G2Table, type GtPow, gtTable } from './fixed.js';
import { type Fp2, N, P } from './fp2.js';
import { type G2Affine, g2add, g2fromAffine, g2inSubgroup, g2mul, g2toAffine } from './g2.js';
import { h1 } from './hash.js';
import { Lru } from './lru.js';
import { type PreparedG2, prepareG2 } from './pairing.js';
import { G1, type G1Point, P2 } from './params.js';
import { pairPrepared } from './wasm/pairing.js';

/**
 * SM9 keys (GM/T 0044). Key objects carry their precomputations: a master public key keeps the
 * table for g = e(P1, Ppub-s) (or e(Ppub-e, P2)) and, for verification, the prepared pairing point
 * of recently seen IDs; a user key keeps its point's multiplication table.
 *
 * Encodings: scalars 32 bytes big-endian; G1 points 04 || x || y (65 bytes); G2 points
 * 04 || x1 || x0 || y1 || y0 (129 bytes, u-coefficient first as the standard prints them).
 */

export const HID_SIGN = 0x01;
export const HID_ENCRYPT = 0x03;
export type Random = (len: number) => Uint8Array;

const F = (n: bigint) => bigintToBytes(n, 32);

let p2Table: G2Table | undefined;
/** [k]P2 from a lazily built fixed-base table. */
export function p2mul(k: bigint): G2Affine | null {
  p2Table ??= new G2Table(P2);
  return g2toAffine(p2Table.mul(k));
}
let p2Prepared: PreparedG2 | undefined;
export function p2Lines(): PreparedG2 {
  p2Prepared ??= prepareG2(P2);
  return p2Prepared;
}

export function g1ToBytes(p: G1Point): Uint8Array {
  return p.toBytes(false);
}

/** Parses 04||x||y and checks the point is on the curve (cofactor 1: then it is in G1) and not O. */
export function g1FromBytes(b: Uint8Array, what: string): G1Point {
  if (b.length !== 65 || b[0] !== 4)
    throw new KapokError(
      'KAPOK_GM_INVALID_KEY',
      `${what}: expected 65 bytes 04||x||y, found ${b.length} bytes`,
    );
  try {
    const p = G1.fromBytes(b);
    p.assertValidity();
    return p;
  } catch (err) {
    throw new KapokError('KAPOK_GM_INVALID_KEY', `${what}: not a point of the SM9 curve`, { cause: err });
  }
}

export function g2ToBytes(a: G2Affine): Uint8Array {
  const out = new Uint8Array(129);
  out[0] = 4;
  out.set(F(a.x[1]), 1);
  out.set(F(a.x[0]), 33);
  out.set(F(a.y[1]), 65);
  out.set(F(a.y[0]), 97);
  return out;
}

/** Parses a G2 point and checks it is on the twist and in the order-N subgroup. */
export function g2FromBytes(b: Uint8Array, what: string): G2Affine {
  if (b.length !== 129 || b[0] !== 4)
    throw new KapokError(
      'KAPOK_GM_INVALID_KEY',
      `${what}: expected 129 bytes 04||x1||x0||y1||y0, found ${b.length} bytes`,
    );
  const c = (i: number) => bytesToBigint(b.subarray(1 + 32 * i, 33 + 32 * i));
  const [x1, x0, y1, y0] = [c(0), c(1), c(2), c(3)];
  if (x1 >= P || x0 >= P || y1 >= P || y0 >= P)
    throw new KapokError('KAPOK_GM_INVALID_KEY', `${what}: coordinate not below the field prime`);
  const a: G2Affine = { x: [x0, x1] as Fp2, y: [y0, y1] as Fp2 };
  if (!g2inSubgroup(a))
    throw new KapokError('KAPOK_GM_INVALID_KEY', `${what}: not a point of the SM9 group G2`);
  return a;
}

function scalarFromBytes(b: Uint8Array, what: string): bigint {
  if (b.length !== 32)
    throw new KapokError('KAPOK_GM_INVALID_KEY', `${what}: expected 32 bytes, found ${b.length}`);
  const k = bytesToBigint(b);
  if (k < 1n || k >= N) throw new KapokError('KAPOK_GM_INVALID_KEY', `${what}: must be in [1, N-1]`);
  return k;
}

/** t1 = H1(ID||hid) + ks and t2 = ks / t1 mod N: the user key is [t2]P1 (sign) or [t2]P2 (enc). */
export function extractScalars(master: bigint, id: Uint8Array, hid: number): { t1: bigint; t2: bigint } {
  const t1 = (h1(id, hid) + master) % N;
  if (t1 === 0n)
    throw new KapokError(
      'KAPOK_GM_INVALID_KEY',
      'this master key cannot issue a key for this ID (H1 + ks = 0 mod N): generate a new master key',
    );
  return { t1, t2: (master * invMod(t1, N)) % N };
}

const userScalar = (master: bigint, id: Uint8Array, hid: number): bigint =>
  extractScalars(master, id, hid).t2;

function checkHid(hid: number): void {
  if (!Number.isInteger(hid) || hid < 0 || hid > 255)
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `hid: expected one byte (0..255), found ${hid}`);
}

export class Sm9SignMasterPublicKey {
  private gTable: GtPow | undefined;
  // A prepared point is ~30 KB of line coefficients: 256 IDs cover bursts without holding much memory.
  private readonly prepared = new Lru<string, PreparedG2 | null>(256);

  constructor(readonly point: G2Affine) {}

  static fromBytes(b: Uint8Array): Sm9SignMasterPublicKey {
    return new Sm9SignMasterPublicKey(g2FromBytes(b, 'SM9 sign master public key'));
  }

  toBytes(): Uint8Array {
    return g2ToBytes(this.point);
  }

  /** g = e(P1, Ppub-s) as a fixed-base table (built on first use: 2,368 products on the wasm field). */
  gt(): GtPow {
    const t = this.gTable ?? this.lazyGt();
    t.fill(Number.POSITIVE_INFINITY);
    return t;
  }

  /**
   * One slice of building the g table (the pairing, then one row of 37): true once it is whole. A
   * start runs these between requests after the port opens rather than before; gt() finishes it.
   */
  warmStep(): boolean {
    if (!this.gTable) {
      this.lazyGt();
      return false;
    }
    return this.gTable.fill(1);
  }

  private lazyGt(): GtPow {
    const p1 = G1.BASE.toAffine();
    this.gTable = gtTable(pairPrepared(prepareG2(this.point), p1.x, p1.y), true);
    return this.gTable;
  }

  /** Prepared pairing point P = [H1(ID||hid)]P2 + Ppub-s; null when it is O (no valid signature then). */
  preparedFor(id: Uint8Array, hid: number): PreparedG2 | null {
    const key = `${hid}:${toHex(id)}`;
    const hit = this.prepared.get(key);
    if (hit !== undefined) return hit;
    const p = p2mul(h1(id, hid));
    const sum = p ? g2toAffine(g2add(g2fromAffine(p), g2fromAffine(this.point))) : this.point;
    const prepared = sum ? prepareG2(sum) : null;
    this.prepared.set(key, prepared);
    return prepared;
  }
}

export class Sm9SignUserKey {
  constructor(readonly point: G1Point) {
    // dsA is reused for every signature: a window table makes each [l]dsA several times cheaper.
    point.precompute(4);
  }

  static fromBytes(b: Uint8Array): Sm9SignUserKey {
    return new Sm9SignUserKey(g1FromBytes(b, 'SM9 sign user key'));
  }

  toBytes(): Uint8Array {
    return g1ToBytes(this.point);
  }
}

export class Sm9SignMasterKey {
  readonly publicKey: Sm9SignMasterPublicKey;

  private constructor(private readonly ks: bigint) {
    // One multiplication per key (generation, every start's keyring load): a plain 4-bit window,
    // not p2mul's fixed-base table, whose ~260 inversions cost more than the product itself.
    this.publicKey = new Sm9SignMasterPublicKey(g2toAffine(g2mul(g2fromAffine(P2), ks)) as G2Affine);
  }

  static generate(random: Random = randomBytes): Sm9SignMasterKey {
    return new Sm9SignMasterKey(randomScalar(N, random));
  }

  static fromBytes(b: Uint8Array): Sm9SignMasterKey {
    return new Sm9SignMasterKey(scalarFromBytes(b, 'SM9 sign master private key'));
  }

  toBytes(): Uint8Array {
    return F(this.ks);
  }

  /** dsA = [t2]P1 for the ID (hid 0x01 by default). */
  extract(id: string | Uint8Array, hid = HID_SIGN): Sm9SignUserKey {
    checkHid(hid);
    return new Sm9SignUserKey(G1.BASE.multiply(userScalar(this.ks, asBytes(id), hid)));
  }
}

export class Sm9EncMasterPublicKey {
  private gTable: GtPow | undefined;

  constructor(readonly point: G1Point) {}

  static fromBytes(b: Uint8Array): Sm9EncMasterPublicKey {
    return new Sm9EncMasterPublicKey(g1FromBytes(b, 'SM9 encryption master public key'));
  }

  toBytes(): Uint8Array {
    return g1ToBytes(this.point);
  }

  /** g = e(Ppub-e, P2) as a fixed-base table. */
  gt(): GtPow {
    if (!this.gTable) {
      const a = this.point.toAffine();
      this.gTable = gtTable(pairPrepared(p2Lines(), a.x, a.y));
    }
    return this.gTable;
  }
}

export class Sm9EncUserKey {
  private lines: PreparedG2 | undefined;

  constructor(readonly point: G2Affine) {}

  static fromBytes(b: Uint8Array): Sm9EncUserKey {
    return new Sm9EncUserKey(g2FromBytes(b, 'SM9 encryption user key'));
  }

  toBytes(): Uint8Array {
    return g2ToBytes(this.point);
  }

  prepared(): PreparedG2 {
    this.lines ??= prepareG2(this.point);
    return this.lines;
  }
}

export class Sm9EncMasterKey {
  readonly publicKey: Sm9EncMasterPublicKey;

  private constructor(private readonly ke: bigint) {
    // Once per key: without the base table that user-key extraction builds on first use.
    this.publicKey = new Sm9EncMasterPublicKey(baseOnce(G1).multiply(ke));
  }

  static generate(random: Random = randomBytes): Sm9EncMasterKey {
    return new Sm9EncMasterKey(randomScalar(N, random));
  }

  static fromBytes(b: Uint8Array): Sm9EncMasterKey {
    return new Sm9EncMasterKey(scalarFromBytes(b, 'SM9 encryption master private key'));
  }

  toBytes(): Uint8Array {
    return F(this.ke);
  }

  /** deB = [t2]P2 for the ID (hid 0x03 by default). */
  extract(id: string | Uint8Array, hid = HID_ENCRYPT): Sm9EncUserKey {
    checkHid(hid);
    return new Sm9EncUserKey(p2mul(userScalar(this.ke, asBytes(id), hid)) as G2Affine);
  }
}
