import { randomBytes } from 'node:crypto';
import { KapokError } from '../../core/errors.js';
import { asBytes, bigintToBytes, bytesToBigint, concatBytes, randomScalar } from '../bytes.js';
import { derBitString, parseBitString, readSequence, TAG, tlv } from '../der.js';
import { N } from './fp2.js';
import { fp12mul } from './fp12.js';
import { gtToBytes, h2 } from './hash.js';
import {
  g1FromBytes,
  HID_SIGN,
  type Random,
  type Sm9SignMasterPublicKey,
  type Sm9SignUserKey,
} from './keys.js';
import { pairPrepared } from './wasm/pairing.js';

/**
 * SM9 signatures (GM/T 0044 part 2). Sign: w = g^r, h = H2(M || w), S = [r - h]dsA. Verify:
 * w' = e(S, [H1(ID||hid)]P2 + Ppub-s) · g^h and h = H2(M || w'). The signature is DER
 * SEQUENCE { h OCTET STRING (32 bytes), S BIT STRING (04 || x || y) }, as GmSSL and gmsm write it.
 */

export interface Sm9Signature {
  h: bigint;
  /** S as 04 || x || y. */
  S: Uint8Array;
}

export function encodeSm9Signature(sig: Sm9Signature): Uint8Array {
  return tlv(TAG.SEQUENCE, concatBytes(tlv(TAG.OCTET_STRING, bigintToBytes(sig.h, 32)), derBitString(sig.S)));
}

/** Structure only (DER, lengths); range and curve checks belong to verification. */
export function decodeSm9Signature(der: Uint8Array): Sm9Signature {
  const [h, s] = readSequence(der, [TAG.OCTET_STRING, TAG.BIT_STRING]) as [Uint8Array, Uint8Array];
  if (h.length !== 32)
    throw new KapokError(
      'KAPOK_GM_INVALID_SIGNATURE',
      `SM9 signature h: expected 32 bytes, found ${h.length}`,
    );
  const S = parseBitString(s);
  if (S.length !== 65 || S[0] !== 4)
    throw new KapokError('KAPOK_GM_INVALID_SIGNATURE', 'SM9 signature S: expected 65 bytes 04||x||y');
  return { h: bytesToBigint(h), S: Uint8Array.from(S) };
}

export function sm9Sign(
  master: Sm9SignMasterPublicKey,
  user: Sm9SignUserKey,
  message: string | Uint8Array,
  opts: { random?: Random } = {},
): Uint8Array {
  const m = asBytes(message);
  const g = master.gt();
  for (;;) {
    const r = randomScalar(N, opts.random ?? randomBytes);
    const h = h2(m, gtToBytes(g.pow(r)));
    const l = (((r - h) % N) + N) % N;
    if (l === 0n) continue;
    return encodeSm9Signature({ h, S: user.point.multiply(l).toBytes(false) });
  }
}

/** True only for a valid signature by the holder of ID's key; any malformed input gives false. */
export function sm9Verify(
  master: Sm9SignMasterPublicKey,
  id: string | Uint8Array,
  message: string | Uint8Array,
  signature: Uint8Array,
  opts: { hid?: number } = {},
): boolean {
  let sig: Sm9Signature;
  let S: ReturnType<typeof g1FromBytes>;
  try {
    sig = decodeSm9Signature(signature);
    S = g1FromBytes(sig.S, 'S');
  } catch {
    return false;
  }
  if (sig.h < 1n || sig.h >= N) return false;
  const prepared = master.preparedFor(asBytes(id), opts.hid ?? HID_SIGN);
  if (!prepared) return false;
  const s = S.toAffine();
  const u = pairPrepared(prepared, s.x, s.y);
  const w = fp12mul(u, master.gt().pow(sig.h));
  return h2(asBytes(message), gtToBytes(w)) === sig.h;
}
