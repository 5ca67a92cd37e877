import { randomBytes } from 'node:crypto';
import { KapokError } from '../../core/errors.js';
import { asBytes, concatBytes, randomScalar } from '../bytes.js';
import { sm3Kdf } from '../sm3.js';
import { N } from './fp2.js';
import { gtToBytes, h1 } from './hash.js';
import {
  g1FromBytes,
  HID_ENCRYPT,
  type Random,
  type Sm9EncMasterPublicKey,
  type Sm9EncUserKey,
} from './keys.js';
import { G1 } from './params.js';
import { pairPrepared } from './wasm/pairing.js';

/**
 * SM9 key encapsulation (GM/T 0044 part 4): C = [r]([H1(ID||hid)]P1 + Ppub-e), K = KDF(C || w || ID)
 * with w = e(Ppub-e, P2)^r; the holder of ID's key recomputes w = e(C, deB). C travels as
 * 04 || x || y (65 bytes); the KDF input uses x || y as the standard does.
 */

export interface Sm9Encapsulated {
  /** The shared key, klen bytes. */
  key: Uint8Array;
  /** C, 65 bytes, to send to the ID's holder. */
  encapsulation: Uint8Array;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

function checkKlen(klen: number): void {
  if (!Number.isInteger(klen) || klen < 1 || klen > 1 << 16)
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `SM9 KEM key length: expected 1..65536 bytes, found ${klen}`,
    );
}

export function sm9Encapsulate(
  master: Sm9EncMasterPublicKey,
  id: string | Uint8Array,
  klen: number,
  opts: { hid?: number; random?: Random } = {},
): Sm9Encapsulated {
  checkKlen(klen);
  const idb = asBytes(id);
  const q = G1.BASE.multiply(h1(idb, opts.hid ?? HID_ENCRYPT)).add(master.point);
  const g = master.gt();
  for (;;) {
    const r = randomScalar(N, opts.random ?? randomBytes);
    const c = q.multiply(r).toBytes(false);
    const key = sm3Kdf(concatBytes(c.subarray(1), gtToBytes(g.pow(r)), idb), klen);
    if (isZero(key)) continue;
    return { key, encapsulation: c };
  }
}

export function sm9Decapsulate(
  user: Sm9EncUserKey,
  id: string | Uint8Array,
  encapsulation: Uint8Array,
  klen: number,
): Uint8Array {
  checkKlen(klen);
  let c: ReturnType<typeof g1FromBytes>;
  try {
    c = g1FromBytes(encapsulation, 'SM9 encapsulation C');
  } catch (err) {
    throw new KapokError('KAPOK_GM_DECRYPT_FAILED', 'SM9 decapsulation failed: C is not a point of G1', {
      cause: err,
    });
  }
  const a = c.toAffine();
  const w = pairPrepared(user.prepared(), a.x, a.y);
  const key = sm3Kdf(concatBytes(encapsulation.subarray(1), gtToBytes(w), asBytes(id)), klen);
  if (isZero(key))
    throw new KapokError('KAPOK_GM_DECRYPT_FAILED', 'SM9 decapsulation failed: derived key is zero');
  return key;
}
