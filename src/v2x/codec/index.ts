/**
 * The CSAE 53 (T/CSAE 53-2019) message codec: UPER (X.691 unaligned PER) decoding and encoding of
 * MessageFrame (BSM, MAP, RSM, SPAT, RSI) and JSON validation with the same constraints. The JSON
 * shape uses the ASN.1 field names (see docs/v2x-codec.md); units are the standard's raw units.
 */
import { type ErrorCode, KapokError } from '../../core/errors.js';
import { dec_MessageFrame, enc_MessageFrame, val_MessageFrame } from './generated.js';
import { PerFail, Reader, Writer } from './per.js';
import type { MessageFrame } from './types.js';

export type * from './types.js';

const DECODE: ErrorCode = 'KAPOK_V2X_DECODE';
const ENCODE: ErrorCode = 'KAPOK_V2X_ENCODE';

/** Joins a failure path: `bsmFrame.pos.lat`, `spatFrame.intersections[0].phases`. */
export function formatPath(path: readonly string[]): string {
  let s = '';
  for (const p of path) s += p.startsWith('[') || s === '' ? p : `.${p}`;
  return s || '(message)';
}

function toKapok(e: unknown, code: ErrorCode, status: number, what: string): never {
  if (!(e instanceof PerFail)) throw e;
  const path = formatPath(e.path);
  throw new KapokError(code, `${what} at ${path}: ${e.message}`, { status, details: { path } });
}

const reader = new Reader();
const writer = new Writer();

/** Decodes one UPER MessageFrame; throws KAPOK_V2X_DECODE naming the field path. */
export function decodeUper(buf: Uint8Array): MessageFrame {
  if (!(buf instanceof Uint8Array))
    throw new KapokError(DECODE, 'UPER input must be a Uint8Array', { status: 400 });
  reader.reset(buf);
  try {
    const v = dec_MessageFrame(reader);
    // The encoding is the bits of the value padded to a whole octet (X.691 10.1); more is garbage.
    const extra = reader.end - reader.pos;
    if (extra >= 8) throw new PerFail(`${extra >>> 3} trailing octets after the message`);
    return v;
  } catch (e) {
    return toKapok(e, DECODE, 400, 'cannot decode UPER MessageFrame');
  } finally {
    reader.reset(EMPTY);
  }
}
const EMPTY = new Uint8Array(0);

/**
 * Encodes a MessageFrame to UPER; throws KAPOK_V2X_ENCODE naming the field path. The result is a view
 * into a shared slab (like a pooled Buffer): use byteOffset/byteLength, copy before transferring.
 */
export function encodeUper(msg: MessageFrame): Uint8Array {
  writer.reset();
  try {
    enc_MessageFrame(writer, msg);
    return writer.result();
  } catch (e) {
    return toKapok(e, ENCODE, 400, 'cannot encode MessageFrame');
  } finally {
    writer.reset();
  }
}

/**
 * Validates a JSON value as a MessageFrame with exactly UPER's constraints (ranges, sizes, enumerated
 * names, unknown keys rejected) and returns a clean copy (hex in lowercase); throws KAPOK_V2X_DECODE.
 */
export function fromJson(value: unknown): MessageFrame {
  try {
    return val_MessageFrame(value);
  } catch (e) {
    return toKapok(e, DECODE, 400, 'invalid MessageFrame JSON');
  }
}
