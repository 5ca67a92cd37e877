// SHA256SUMS / SM3SUMS in the coreutils format ("<hex>  <name>"), so `sha256sum -c` checks the
// first; the second is the same layout with SM3 (GB/T 32905) for operators who must use it
// (`kapok gm sm3 FILE` or `gmssl sm3` check one line).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export function writeSums(out: string, dir: string, files: string[], hash: (file: string) => string): void {
  writeFileSync(out, files.map((f) => `${hash(join(dir, f))}  ${f}\n`).join(''));
}
