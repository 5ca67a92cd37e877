import { readFileSync } from 'node:fs';

/** The shared published GM test values (../shared/vectors/gm.json from the repo root). */
const file = new URL('../../../shared/vectors/gm.json', import.meta.url);
export const vectors = JSON.parse(readFileSync(file, 'utf8'));

/** Hex to bytes, left-padded to `len` bytes when given (the standard prints some scalars short). */
export function hex(h: string, len?: number): Uint8Array {
  return Uint8Array.from(Buffer.from(len ? h.padStart(len * 2, '0') : h, 'hex'));
}

export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
