import { KapokError } from '../core/errors.js';
import { bigintToBytes, bytesToBigint, concatBytes } from './bytes.js';

/**
 * The little DER the GM signatures need: SEQUENCE of INTEGER / OCTET STRING / BIT STRING, definite
 * short or long lengths only. The reader is strict (no trailing bytes, minimal lengths and integers)
 * so that one signature has exactly one encoding.
 */

export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, SEQUENCE: 0x30 } as const;

function bad(what: string): never {
  throw new KapokError('KAPOK_GM_INVALID_SIGNATURE', `signature DER: ${what}`);
}

function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, value: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(tag), encodeLength(value.length), value);
}

/** A non-negative INTEGER, minimally encoded. */
export function derInteger(n: bigint): Uint8Array {
  let b = n === 0n ? Uint8Array.of(0) : bigintToBytes(n, Math.ceil(n.toString(16).length / 2));
  if ((b[0] as number) & 0x80) b = concatBytes(Uint8Array.of(0), b);
  return tlv(TAG.INTEGER, b);
}

export interface Tlv {
  tag: number;
  value: Uint8Array;
}

/** Reads consecutive TLVs covering all of `buf` exactly. */
export function readAll(buf: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 2) bad('truncated header');
    const tag = buf[off] as number;
    let len = buf[off + 1] as number;
    off += 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) bad('unsupported length form');
      if (buf.length - off < n) bad('truncated length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[off + i] as number);
      if (len < 0x80 || (n > 1 && buf[off] === 0)) bad('length not minimally encoded');
      off += n;
    }
    if (buf.length - off < len) bad('truncated value');
    out.push({ tag, value: buf.subarray(off, off + len) });
    off += len;
  }
  return out;
}

/** The items of a single top-level SEQUENCE with the expected tags. */
export function readSequence(buf: Uint8Array, tags: number[]): Uint8Array[] {
  const top = readAll(buf);
  if (top.length !== 1 || top[0]?.tag !== TAG.SEQUENCE) bad('expected one SEQUENCE and nothing after it');
  const items = readAll(top[0].value);
  if (items.length !== tags.length) bad(`expected ${tags.length} items, found ${items.length}`);
  return items.map((it, i) => {
    if (it.tag !== tags[i])
      bad(`item ${i + 1} has tag 0x${it.tag.toString(16)}, expected 0x${(tags[i] as number).toString(16)}`);
    return it.value;
  });
}

export function parseInteger(v: Uint8Array): bigint {
  if (v.length === 0) bad('empty INTEGER');
  if ((v[0] as number) & 0x80) bad('negative INTEGER');
  if (v.length > 1 && v[0] === 0 && !((v[1] as number) & 0x80)) bad('INTEGER not minimally encoded');
  return bytesToBigint(v);
}

/** BIT STRING contents with no unused bits. */
export function parseBitString(v: Uint8Array): Uint8Array {
  if (v.length < 1 || v[0] !== 0) bad('BIT STRING must have 0 unused bits');
  return v.subarray(1);
}

export function derBitString(bytes: Uint8Array): Uint8Array {
  return tlv(TAG.BIT_STRING, concatBytes(Uint8Array.of(0), bytes));
}
