import { randomBytes } from 'node:crypto';
import {
  type WeierstrassPoint,
  type WeierstrassPointCons,
  weierstrass,
} from '@noble/curves/abstract/weierstrass.js';
import { KapokError } from '../core/errors.js';
import { baseOnce } from './base-point.js';
import {
  asBytes,
  bigintToBytes,
  bytesToBigint,
  concatBytes,
  invMod,
  mod,
  randomScalar,
  toHex,
} from './bytes.js';
import { derInteger, parseInteger, readSequence, TAG, tlv } from './der.js';
import { sm3 } from './sm3.js';
import { Lru } from './sm9/lru.js';

/**
 * SM2 digital signatures (GB/T 32918.2) on @noble/curves' short-Weierstrass arithmetic. The scheme
 * is not ECDSA: e = SM3(Z || M) with Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA),
 * r = (e + x1) mod n, s = (1 + d)^-1 (k - r d) mod n. Node's crypto.sign on an SM2 key is ECDSA.
 */

export const SM2_CURVE = {
  p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
  a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
  b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
  n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
  h: 1n,
  Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
} as const;

export const SM2_DEFAULT_ID = '1234567812345678';

/** Domain parameters of a 256-bit prime curve y^2 = x^3 + ax + b, cofactor 1. */
export interface Sm2CurveParams {
  p: bigint;
  a: bigint;
  b: bigint;
  n: bigint;
  h: bigint;
  Gx: bigint;
  Gy: bigint;
}

/** The curve the algorithms below run on, with its point arithmetic. */
export interface Sm2Domain {
  curve: Sm2CurveParams;
  Point: WeierstrassPointCons<bigint>;
}

type Point = WeierstrassPoint<bigint>;

/**
 * Builds a domain. Production uses only the recommended curve (SM2_DOMAIN); the tests also build
 * the 256-bit example curve printed in GB/T 32918 appendices to check the standard's worked
 * examples through these same code paths. Not exported from crypto/index.ts.
 */
export function sm2Domain(curve: Sm2CurveParams): Sm2Domain {
  return { curve, Point: weierstrass(curve) };
}

export const SM2_DOMAIN = sm2Domain(SM2_CURVE);
export const Sm2Point = SM2_DOMAIN.Point;
// k·G is most of a signature. @noble/curves blinds the secret k (384-bit scalars) and adds once per
// window, constant-time; 8-bit windows instead of its default 6 make signing ~1.3x faster for a
// ~1.5 MB table, built on the first signature.
Sm2Point.BASE.precompute(8);

export interface Sm2KeyPair {
  /** 32-byte private scalar d in [1, n-2]. */
  privateKey: Uint8Array;
  /** 65-byte uncompressed public point 04 || x || y. */
  publicKey: Uint8Array;
}

export type Sm2SignatureFormat = 'der' | 'raw';

export interface Sm2SignOptions {
  /** Signer ID for Z (default 1234567812345678). */
  id?: string | Uint8Array;
  /** 'der' (default): SEQUENCE { r, s }; 'raw': r || s, 64 bytes. */
  format?: Sm2SignatureFormat;
  /** The signer's public key; derived from the private key when absent. */
  publicKey?: Uint8Array;
  /** Random source, for tests only. */
  random?: (len: number) => Uint8Array;
}

function privateScalar(priv: Uint8Array, n: bigint = SM2_CURVE.n): bigint {
  if (priv.length !== 32)
    throw new KapokError('KAPOK_GM_INVALID_KEY', `SM2 private key: expected 32 bytes, found ${priv.length}`);
  const d = bytesToBigint(priv);
  if (d < 1n || d > n - 2n)
    throw new KapokError('KAPOK_GM_INVALID_KEY', 'SM2 private key: must be in [1, n-2]; generate a new one');
  return d;
}

/** Parses 04||x||y (or 02/03||x compressed) and checks the point is on the curve and not infinity. */
export function sm2PublicPoint(pub: Uint8Array, dom: Sm2Domain = SM2_DOMAIN): Point {
  try {
    const p = dom.Point.fromBytes(pub);
    p.assertValidity();
    if (p.is0()) throw new Error('infinity');
    return p;
  } catch (err) {
    throw new KapokError(
      'KAPOK_GM_INVALID_KEY',
      'SM2 public key: expected 65 bytes 04||x||y (or 33 compressed) of a point on the SM2 curve',
      { cause: err },
    );
  }
}

export function sm2PublicKey(privateKey: Uint8Array, dom: Sm2Domain = SM2_DOMAIN): Uint8Array {
  return baseOnce(dom.Point).multiply(privateScalar(privateKey, dom.curve.n)).toBytes(false);
}

export function sm2GenerateKeyPair(random: (len: number) => Uint8Array = randomBytes): Sm2KeyPair {
  const d = randomScalar(SM2_CURVE.n - 1n, random);
  const privateKey = bigintToBytes(d, 32);
  return { privateKey, publicKey: sm2PublicKey(privateKey) };
}

// Z depends on public values only and a signer (a token issuer) reuses one key and ID.
const zCache = new Lru<string, Uint8Array>(64);

/** Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), on the recommended curve unless `dom` is given. */
export function sm2Z(
  publicKey: Uint8Array,
  id: string | Uint8Array = SM2_DEFAULT_ID,
  dom: Sm2Domain = SM2_DOMAIN,
): Uint8Array {
  const idBytes = asBytes(id);
  if (idBytes.length >= 8192)
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `SM2 ID: at most 8191 bytes, found ${idBytes.length}`);
  const key = dom === SM2_DOMAIN ? `${toHex(publicKey)}:${toHex(idBytes)}` : null;
  const hit = key === null ? undefined : zCache.get(key);
  if (hit) return hit.slice();
  const z = computeZ(publicKey, idBytes, dom);
  if (key !== null) zCache.set(key, z.slice());
  return z;
}

function computeZ(publicKey: Uint8Array, idBytes: Uint8Array, dom: Sm2Domain): Uint8Array {
  const entl = Uint8Array.of((idBytes.length * 8) >> 8, (idBytes.length * 8) & 0xff);
  const a = sm2PublicPoint(publicKey, dom).toAffine();
  const c = dom.curve;
  const f = (n: bigint) => bigintToBytes(n, 32);
  return sm3(entl, idBytes, f(c.a), f(c.b), f(c.Gx), f(c.Gy), f(a.x), f(a.y));
}

function digest(
  message: string | Uint8Array,
  publicKey: Uint8Array,
  id: string | Uint8Array | undefined,
  dom: Sm2Domain,
): bigint {
  return bytesToBigint(sm3(sm2Z(publicKey, id, dom), asBytes(message)));
}

export function sm2Sign(
  privateKey: Uint8Array,
  message: string | Uint8Array,
  opts: Sm2SignOptions = {},
): Uint8Array {
  const { r, s } = sm2SignOn(SM2_DOMAIN, privateKey, message, opts);
  return encodeSm2Signature(r, s, opts.format ?? 'der');
}

/**
 * The signing steps A1-A7 of GB/T 32918.2 on a given domain. Internal: sm2Sign is the public entry
 * (recommended curve); the tests call this with the standard's example curve and a fixed k
 * (through `random`) to reproduce its worked examples. Not exported from crypto/index.ts.
 */
export function sm2SignOn(
  dom: Sm2Domain,
  privateKey: Uint8Array,
  message: string | Uint8Array,
  opts: Omit<Sm2SignOptions, 'format'> = {},
): { r: bigint; s: bigint } {
  const n = dom.curve.n;
  const d = privateScalar(privateKey, n);
  const pub = opts.publicKey ?? dom.Point.BASE.multiply(d).toBytes(false);
  const e = digest(message, pub, opts.id, dom);
  const dInv = invMod(1n + d, n);
  for (;;) {
    const k = randomScalar(n, opts.random ?? randomBytes);
    const x1 = dom.Point.BASE.multiply(k).toAffine().x;
    const r = mod(e + x1, n);
    if (r === 0n || r + k === n) continue;
    const s = mod(dInv * (k - r * d), n);
    if (s === 0n) continue;
    return { r, s };
  }
}

export function encodeSm2Signature(r: bigint, s: bigint, format: Sm2SignatureFormat): Uint8Array {
  if (format === 'raw') return concatBytes(bigintToBytes(r, 32), bigintToBytes(s, 32));
  return tlv(TAG.SEQUENCE, concatBytes(derInteger(r), derInteger(s)));
}

/** r and s from DER, or from 64 raw bytes; throws KAPOK_GM_INVALID_SIGNATURE. */
export function decodeSm2Signature(sig: Uint8Array, format?: Sm2SignatureFormat): { r: bigint; s: bigint } {
  if (format === undefined) {
    // Auto: strict DER first; a raw r||s may begin with 0x30 too, so fall back on its length.
    try {
      return decodeSm2Signature(sig, 'der');
    } catch (err) {
      if (sig.length === 64) return decodeSm2Signature(sig, 'raw');
      throw err;
    }
  }
  if (format === 'raw') {
    if (sig.length !== 64)
      throw new KapokError(
        'KAPOK_GM_INVALID_SIGNATURE',
        `SM2 raw signature: expected 64 bytes, found ${sig.length}`,
      );
    return { r: bytesToBigint(sig.subarray(0, 32)), s: bytesToBigint(sig.subarray(32)) };
  }
  const [r, s] = readSequence(sig, [TAG.INTEGER, TAG.INTEGER]).map(parseInteger) as [bigint, bigint];
  return { r, s };
}

/** True only for a valid signature; malformed signatures and keys give false, not an exception. */
export function sm2Verify(
  publicKey: Uint8Array,
  message: string | Uint8Array,
  signature: Uint8Array,
  opts: { id?: string | Uint8Array; format?: Sm2SignatureFormat } = {},
): boolean {
  let rs: { r: bigint; s: bigint };
  try {
    rs = decodeSm2Signature(signature, opts.format);
  } catch {
    return false;
  }
  return sm2VerifyOn(SM2_DOMAIN, publicKey, message, rs, opts.id);
}

/** Verification steps B1-B7 on a given domain. Internal, like sm2SignOn. */
export function sm2VerifyOn(
  dom: Sm2Domain,
  publicKey: Uint8Array,
  message: string | Uint8Array,
  { r, s }: { r: bigint; s: bigint },
  id?: string | Uint8Array,
): boolean {
  const n = dom.curve.n;
  let pa: Point;
  try {
    pa = sm2PublicPoint(publicKey, dom);
  } catch {
    return false;
  }
  if (r < 1n || r >= n || s < 1n || s >= n) return false;
  const t = mod(r + s, n);
  if (t === 0n) return false;
  const e = digest(message, publicKey, id, dom);
  const pt = dom.Point.BASE.mulAddUnsafe(s, pa, t);
  if (pt.is0()) return false;
  return mod(e + pt.toAffine().x, n) === r;
}
