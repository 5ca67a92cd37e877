// THIRD-PARTY-NOTICES: the licence of everything an artefact carries: the Node.js runtime, each
// package bundled into dist/bundle (read from the bundle's source maps) and each package in its
// node_modules, with the licence text each package ships.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const LICENCE_FILE = /^(licen[cs]e|copying|notice)(\.|-|$)/i;

interface Entry {
  name: string;
  version: string;
  license: string;
  texts: string[];
}

function entryOf(dir: string): Entry | null {
  if (!existsSync(join(dir, 'package.json'))) return null;
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    name?: string;
    version?: string;
    license?: string | { type?: string };
  };
  if (!pkg.name) return null;
  const license = typeof pkg.license === 'string' ? pkg.license : (pkg.license?.type ?? 'UNKNOWN');
  const texts = readdirSync(dir)
    .filter((f) => LICENCE_FILE.test(f))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8').trim());
  return { name: pkg.name, version: pkg.version ?? '', license, texts };
}

/** Package folders named by the source maps' `sources` (…/node_modules/<name>/…), under modulesRoot. */
export function bundledPackages(bundleDir: string, modulesRoot: string): string[] {
  const names = new Set<string>();
  for (const f of readdirSync(bundleDir).filter((n) => n.endsWith('.js.map'))) {
    const map = JSON.parse(readFileSync(join(bundleDir, f), 'utf8')) as { sources?: string[] };
    for (const s of map.sources ?? []) {
      const i = s.indexOf('node_modules/');
      if (i < 0) continue;
      // "../../node_modules/a/node_modules/@b/c/lib/x.js" -> "a/node_modules/@b/c"
      const segs = s.slice(i + 'node_modules/'.length).split('/');
      const chain: string[] = [];
      for (let k = 0; k < segs.length; ) {
        const seg = segs[k] as string;
        const name = seg.startsWith('@') ? `${seg}/${segs[k + 1]}` : seg;
        chain.push(name);
        k += seg.startsWith('@') ? 2 : 1;
        if (segs[k] !== 'node_modules') break;
        k++;
      }
      names.add(chain.join('/node_modules/'));
    }
  }
  return [...names].sort().map((n) => join(modulesRoot, 'node_modules', n));
}

/** All package folders under a node_modules tree (nested ones included). */
export function installedPackages(top: string): string[] {
  const out: string[] = [];
  const walk = (nm: string) => {
    if (!existsSync(nm)) return;
    for (const e of readdirSync(nm)) {
      if (e.startsWith('.')) continue;
      const dirs = e.startsWith('@') ? readdirSync(join(nm, e)).map((s) => join(nm, e, s)) : [join(nm, e)];
      for (const d of dirs) {
        out.push(d);
        walk(join(d, 'node_modules'));
      }
    }
  };
  walk(join(top, 'node_modules'));
  return out;
}

export function thirdPartyNotices(opts: {
  nodeLicense: string;
  nodeVersion: string;
  packages: string[];
}): string {
  const seen = new Map<string, Entry>();
  for (const dir of opts.packages) {
    const e = entryOf(dir);
    if (e) seen.set(`${e.name}@${e.version}`, e);
  }
  const entries = [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
  const rule = '-'.repeat(78);
  const parts = [
    'THIRD-PARTY NOTICES',
    '',
    'Kapok is Apache-2.0. This artefact also carries the software below, each under its own licence.',
    `Node.js ${opts.nodeVersion} and ${entries.length} npm packages.`,
    '',
    rule,
    `Node.js ${opts.nodeVersion} (node/bin/node): MIT, with the licences of its own bundled parts`,
    rule,
    opts.nodeLicense.trim(),
  ];
  for (const e of entries) {
    parts.push('', rule, `${e.name} ${e.version}: ${e.license}`, rule);
    parts.push(
      e.texts.length > 0
        ? e.texts.join('\n\n')
        : `(the package ships no licence file; its declared licence is ${e.license})`,
    );
  }
  return `${parts.join('\n')}\n`;
}
