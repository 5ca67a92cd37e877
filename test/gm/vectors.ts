import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The published GM test values: KAPOK_TEST_GM_VECTORS if set, else test/fixtures/gm.json, a copy of
 * the design folder's shared/vectors/gm.json kept in the repository so a bare clone (CI) has it.
 */
const file =
  process.env.KAPOK_TEST_GM_VECTORS ?? fileURLToPath(new URL('../fixtures/gm.json', import.meta.url));
if (!existsSync(file))
  throw new Error(`GM test vectors not found at ${file}: set KAPOK_TEST_GM_VECTORS to the path of gm.json`);
export const vectors = JSON.parse(readFileSync(file, 'utf8'));

/** Hex to bytes, left-padded to `len` bytes when given (the standard prints some scalars short). */
export function hex(h: string, len?: number): Uint8Array {
  return Uint8Array.from(Buffer.from(len ? h.padStart(len * 2, '0') : h, 'hex'));
}

export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
