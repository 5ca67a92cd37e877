// The ELF manifest and gate: every ELF file in an artefact with its machine and the highest GLIBC
// and GLIBCXX symbol versions it needs (from .gnu.version_r, what the dynamic loader checks), and
// the rule that fails the release when one would not load on the oldest system we support.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface ElfEntry {
  path: string;
  machine: string;
  /** Highest GLIBC_x.y needed, null when none (static, or no libc). */
  glibc: string | null;
  glibcxx: string | null;
}

const MACHINES: Record<number, string> = { 3: 'i386', 40: 'arm', 62: 'x86-64', 183: 'aarch64' };
const SHT_GNU_VERNEED = 0x6ffffffe;

function read(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  if (n !== len) throw new Error(`truncated ELF (wanted ${len} bytes at ${pos})`);
  return b;
}

/** Compares dotted versions numerically ("2.28" < "2.3" is false). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function highest(names: string[], prefix: string): string | null {
  const vs = names.filter((n) => n.startsWith(`${prefix}_`) && /^[0-9.]+$/.test(n.slice(prefix.length + 1)));
  if (vs.length === 0) return null;
  return (
    vs
      .map((n) => n.slice(prefix.length + 1))
      .sort(compareVersions)
      .at(-1) ?? null
  );
}

/** null when the file is not ELF; throws on a truncated or 32-bit/big-endian one we do not ship. */
export function inspectElf(file: string): Omit<ElfEntry, 'path'> | null {
  const fd = openSync(file, 'r');
  try {
    if (statSync(file).size < 64) return null;
    const h = read(fd, 0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46) return null;
    if (h[4] !== 2 || h[5] !== 1) throw new Error(`${file}: only 64-bit little-endian ELF is shipped`);
    const machineId = h.readUInt16LE(18);
    const machine = MACHINES[machineId] ?? `machine ${machineId}`;
    const shoff = Number(h.readBigUInt64LE(40));
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);
    const names: string[] = [];
    if (shoff > 0 && shnum > 0) {
      const sh = read(fd, shoff, shentsize * shnum);
      const sec = (i: number) => ({
        type: sh.readUInt32LE(i * shentsize + 4),
        offset: Number(sh.readBigUInt64LE(i * shentsize + 24)),
        size: Number(sh.readBigUInt64LE(i * shentsize + 32)),
        link: sh.readUInt32LE(i * shentsize + 40),
        info: sh.readUInt32LE(i * shentsize + 44),
      });
      for (let i = 0; i < shnum; i++) {
        const s = sec(i);
        if (s.type !== SHT_GNU_VERNEED) continue;
        const strs = sec(s.link);
        const str = read(fd, strs.offset, strs.size);
        const cstr = (o: number) => str.toString('latin1', o, str.indexOf(0, o));
        const vn = read(fd, s.offset, s.size);
        let off = 0;
        for (let n = 0; n < s.info && off + 16 <= vn.length; n++) {
          const cnt = vn.readUInt16LE(off + 2);
          let aux = off + vn.readUInt32LE(off + 8);
          for (let k = 0; k < cnt && aux + 16 <= vn.length; k++) {
            names.push(cstr(vn.readUInt32LE(aux + 8)));
            const next = vn.readUInt32LE(aux + 12);
            if (next === 0) break;
            aux += next;
          }
          const next = vn.readUInt32LE(off + 12);
          if (next === 0) break;
          off += next;
        }
      }
    }
    return { machine, glibc: highest(names, 'GLIBC'), glibcxx: highest(names, 'GLIBCXX') };
  } finally {
    closeSync(fd);
  }
}

/** Every ELF file under dir (symlinks not followed), paths relative to dir, sorted. */
export function elfManifest(dir: string): ElfEntry[] {
  const out: ElfEntry[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const info = inspectElf(p);
        if (info) out.push({ path: relative(dir, p), ...info });
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

export interface GateRule {
  machine: string;
  maxGlibc: string;
  maxGlibcxx: string;
}

/** Kylin V10 SP2 ships glibc 2.28 and GCC 7's libstdc++ (GLIBCXX_3.4.22 and below are safe). */
export const GATE: Record<'x64' | 'arm64', GateRule> = {
  arm64: { machine: 'aarch64', maxGlibc: '2.28', maxGlibcxx: '3.4.22' },
  x64: { machine: 'x86-64', maxGlibc: '2.28', maxGlibcxx: '3.4.22' },
};

/** One line per ELF file that breaks the rule; [] when the artefact passes. */
export function gateViolations(entries: ElfEntry[], rule: GateRule): string[] {
  const bad: string[] = [];
  for (const e of entries) {
    if (e.machine !== rule.machine) bad.push(`${e.path}: built for ${e.machine}, not ${rule.machine}`);
    if (e.glibc && compareVersions(e.glibc, rule.maxGlibc) > 0)
      bad.push(`${e.path}: needs GLIBC_${e.glibc} (at most GLIBC_${rule.maxGlibc})`);
    if (e.glibcxx && compareVersions(e.glibcxx, rule.maxGlibcxx) > 0)
      bad.push(`${e.path}: needs GLIBCXX_${e.glibcxx} (at most GLIBCXX_${rule.maxGlibcxx})`);
  }
  return bad;
}
