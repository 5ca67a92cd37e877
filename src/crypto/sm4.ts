import { createCipheriv, createDecipheriv, timingSafeEqual } from 'node:crypto';
import { KapokError } from '../core/errors.js';
import { Ghash } from './ghash.js';

/**
 * SM4 (GB/T 32907). ECB, CBC and CTR come from Node's OpenSSL; GCM (RFC 8998) is built here on
 * SM4-ECB (hash key, tag mask) and SM4-CTR (keystream) with our GHASH, because OpenSSL builds
 * shipped with Node do not list sm4-gcm.
 */

export const SM4_KEY_BYTES = 16;
export const SM4_BLOCK_BYTES = 16;
export const SM4_GCM_TAG_BYTES = 16;
export type Sm4Mode = 'ecb' | 'cbc' | 'ctr';

function checkKey(key: Uint8Array): void {
  if (key.length !== SM4_KEY_BYTES)
    throw new KapokError(
      'KAPOK_GM_INVALID_KEY',
      `SM4 key: expected ${SM4_KEY_BYTES} bytes (32 hex digits), found ${key.length}`,
    );
}

function checkIv(mode: Sm4Mode, iv: Uint8Array | undefined): Uint8Array | null {
  if (mode === 'ecb') {
    if (iv?.length) throw new KapokError('KAPOK_GM_INVALID_INPUT', 'SM4-ECB takes no IV');
    return null;
  }
  if (!iv || iv.length !== SM4_BLOCK_BYTES)
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `SM4-${mode.toUpperCase()} IV: expected 16 bytes, found ${iv?.length ?? 0}`,
    );
  return iv;
}

export interface Sm4Options {
  /** PKCS#7 padding for ECB and CBC (default true); CTR never pads. */
  padding?: boolean;
}

export function sm4Encrypt(
  mode: Sm4Mode,
  key: Uint8Array,
  iv: Uint8Array | undefined,
  data: Uint8Array,
  opts: Sm4Options = {},
): Uint8Array {
  checkKey(key);
  const c = createCipheriv(`sm4-${mode}`, key, checkIv(mode, iv));
  if (mode !== 'ctr') c.setAutoPadding(opts.padding ?? true);
  try {
    return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
  } catch (err) {
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `SM4-${mode.toUpperCase()} without padding needs whole 16-byte blocks`,
      { cause: err },
    );
  }
}

export function sm4Decrypt(
  mode: Sm4Mode,
  key: Uint8Array,
  iv: Uint8Array | undefined,
  data: Uint8Array,
  opts: Sm4Options = {},
): Uint8Array {
  checkKey(key);
  const d = createDecipheriv(`sm4-${mode}`, key, checkIv(mode, iv));
  if (mode !== 'ctr') d.setAutoPadding(opts.padding ?? true);
  try {
    return new Uint8Array(Buffer.concat([d.update(data), d.final()]));
  } catch (err) {
    throw new KapokError(
      'KAPOK_GM_DECRYPT_FAILED',
      `SM4-${mode.toUpperCase()} decryption failed: wrong key or IV, or the data was altered (bad padding)`,
      { cause: err },
    );
  }
}

function ecbBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const c = createCipheriv('sm4-ecb', key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(block));
}

/** GCM's inc32 keystream from counter block `ctr`: OpenSSL's CTR carries into all 128 bits, so split where the low 32 bits wrap. */
function gctr(key: Uint8Array, ctr: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  let counter = Uint8Array.from(ctr);
  let off = 0;
  while (off < data.length) {
    const low = new DataView(counter.buffer).getUint32(12);
    const blocksLeft = 0x100000000 - low;
    const end = Math.min(data.length, off + blocksLeft * SM4_BLOCK_BYTES);
    const c = createCipheriv('sm4-ctr', key, counter);
    out.set(c.update(data.subarray(off, end)), off);
    off = end;
    counter = Uint8Array.from(counter);
    new DataView(counter.buffer).setUint32(12, 0);
  }
  return out;
}

function gcmSetup(key: Uint8Array, iv: Uint8Array): { h: Uint8Array; j0: Uint8Array } {
  checkKey(key);
  if (iv.length < 1 || iv.length > 1024)
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `SM4-GCM nonce: expected 12 bytes (1..1024 allowed), found ${iv.length}`,
    );
  const h = ecbBlock(key, new Uint8Array(16));
  let j0: Uint8Array;
  if (iv.length === 12) {
    j0 = new Uint8Array(16);
    j0.set(iv);
    j0[15] = 1;
  } else {
    j0 = new Ghash(h).update(iv).finish(0, iv.length);
  }
  return { h, j0 };
}

function inc32(block: Uint8Array): Uint8Array {
  const out = Uint8Array.from(block);
  const dv = new DataView(out.buffer);
  dv.setUint32(12, (dv.getUint32(12) + 1) >>> 0);
  return out;
}

function gcmTag(key: Uint8Array, h: Uint8Array, j0: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const s = new Ghash(h).update(aad).update(ct).finish(aad.length, ct.length);
  const mask = ecbBlock(key, j0);
  for (let i = 0; i < 16; i++) s[i] = (s[i] as number) ^ (mask[i] as number);
  return s;
}

export interface GcmSealed {
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

export function sm4GcmEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): GcmSealed {
  const { h, j0 } = gcmSetup(key, nonce);
  const ciphertext = gctr(key, inc32(j0), plaintext);
  return { ciphertext, tag: gcmTag(key, h, j0, aad, ciphertext) };
}

/** Checks the tag (in constant time) before decrypting anything; a mismatch throws KAPOK_GM_DECRYPT_FAILED. */
export function sm4GcmDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const { h, j0 } = gcmSetup(key, nonce);
  // Only full 16-byte tags: accepting truncated ones would let an attacker shorten the tag.
  if (tag.length !== SM4_GCM_TAG_BYTES)
    throw new KapokError(
      'KAPOK_GM_DECRYPT_FAILED',
      `SM4-GCM tag: expected ${SM4_GCM_TAG_BYTES} bytes, found ${tag.length}; nothing was decrypted`,
    );
  const expected = gcmTag(key, h, j0, aad, ciphertext);
  if (!timingSafeEqual(expected, tag))
    throw new KapokError(
      'KAPOK_GM_DECRYPT_FAILED',
      'SM4-GCM authentication failed: the ciphertext, tag, nonce or AAD was altered, or the key is wrong',
    );
  return gctr(key, inc32(j0), ciphertext);
}
