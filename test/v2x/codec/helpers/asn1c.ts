/**
 * asn1c's converter for the vendored modules, built once per module set: `asn1c -gen-PER
 * -fcompound-names -pdu=MessageFrame` then `make -f Makefile.am.sample` into
 * node_modules/.cache/kapok-asn1c/<hash of the .asn files>/progname, so only the first run pays for
 * the build (a few seconds). Without asn1c the caller skips, unless KAPOK_REQUIRE_SERVICES=1.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../../../', import.meta.url).pathname;
export const ASN_DIR = join(root, 'src/v2x/codec/asn');

export type Converter = { path: string } | { skip: string };

export function asn1cConverter(): Converter {
  const v = spawnSync('asn1c', ['-version'], { encoding: 'utf8' });
  if (v.error) {
    const msg = 'asn1c not installed: apt-get install asn1c';
    if (process.env.KAPOK_REQUIRE_SERVICES === '1')
      throw new Error(`${msg}. KAPOK_REQUIRE_SERVICES=1, so a missing asn1c fails the run.`);
    return { skip: msg };
  }
  const files = readdirSync(ASN_DIR)
    .filter((f) => f.endsWith('.asn'))
    .sort();
  const h = createHash('sha256').update(`${v.stdout}${v.stderr}`);
  for (const f of files) h.update(f).update(readFileSync(join(ASN_DIR, f)));
  const dir = join(root, 'node_modules/.cache/kapok-asn1c', h.digest('hex').slice(0, 16));
  const path = join(dir, 'progname');
  if (existsSync(path)) return { path };

  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: tmp, encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0)
      throw new Error(
        `${cmd} ${args.slice(0, 4).join(' ')} failed: ${(r.stderr || r.stdout || '').slice(-2000)}`,
      );
  };
  run('asn1c', ['-gen-PER', '-fcompound-names', '-pdu=MessageFrame', ...files.map((f) => join(ASN_DIR, f))]);
  run('make', ['-j2', '-f', 'Makefile.am.sample']);
  try {
    renameSync(tmp, dir);
  } catch {
    // Another test process built it at the same time: keep theirs.
    rmSync(tmp, { recursive: true, force: true });
  }
  return { path };
}

/** Runs the converter on files; stdout as bytes, the exit status and stderr. */
export function convert(
  progname: string,
  args: string[],
  cwd: string,
): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(progname, args, { cwd, timeout: 60_000, maxBuffer: 256 << 20 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
