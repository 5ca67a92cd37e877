import { readFileSync } from 'node:fs';
import { type ErrorCode, KapokError } from '../core/errors.js';
import { fromHex } from './bytes.js';

/**
 * A symmetric key given in the config as hex (`gm.kek`) or as a file holding the hex (`gm.kekFile`),
 * the value winning over the file. Shared by every capability that seals data under a key of its own
 * section (gm's KEK, audit's KEK and shipping key). Errors name the key and file, never the bytes.
 */
export interface HexKeyOptions {
  value: string | null;
  file: string | null;
  /** Config key of the value, e.g. `gm.kek`; the file's key is `<key>File`. */
  key: string;
  /** The env override named in the message when neither is set, e.g. `KAPOK_GM__KEK`. */
  env: string;
  bytes: number;
  /** The catalogue code for an unreadable or malformed file. */
  fileError: ErrorCode;
}

export function readHexKey(o: HexKeyOptions): Uint8Array {
  if (o.value) return fromHex(o.value, o.key, o.bytes);
  const fileKey = `${o.key}File`;
  if (!o.file)
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `${o.key}: required (or ${fileKey}); e.g. ${o.env}=<${o.bytes * 2} hex digits>`,
    );
  let text: string;
  try {
    text = readFileSync(o.file, 'utf8');
  } catch (err) {
    throw new KapokError(o.fileError, `${fileKey} ${o.file} cannot be read: check the path and permissions`, {
      cause: err,
    });
  }
  try {
    return fromHex(text, fileKey, o.bytes);
  } catch (err) {
    throw new KapokError(o.fileError, `${fileKey} ${o.file} must hold exactly ${o.bytes * 2} hex digits`, {
      cause: err,
    });
  }
}
