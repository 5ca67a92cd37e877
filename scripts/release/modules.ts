// The production node_modules of an artefact: only what the bundle leaves external (native and
// file-reading packages, scripts/bundle.mjs) and their dependencies, installed from the lockfile
// for the target's cpu/os without install scripts, then given the target's native binaries.
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { cacheDir, run, step, type Target } from './common.js';

const root = new URL('../../', import.meta.url).pathname;

/** Kept in sync with the `external` list of scripts/bundle.mjs (pg-native is optional and absent). */
export const EXTERNAL = ['better-sqlite3', 'onnxruntime-node', 'grpc-health-check', '@grpc/reflection'];

interface Pkg {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const readPkg = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Pkg;

/** Node's resolution of `name` from a package folder: its own node_modules, then each parent's. */
function resolvePkg(from: string, name: string, top: string): string | null {
  for (let d = from; d.startsWith(top); d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === top) break;
  }
  return null;
}

/** Package folders reachable from the roots (dependencies, optional and peer ones that are installed). */
export function closure(topDir: string, roots: string[]): Set<string> {
  const top = resolve(topDir);
  const seen = new Set<string>();
  const queue = roots.map((r) => {
    const p = resolvePkg(top, r, top);
    if (!p) throw new Error(`${r} is not installed under ${top}`);
    return p;
  });
  while (queue.length > 0) {
    const dir = queue.pop() as string;
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = readPkg(dir);
    const deps = { ...pkg.peerDependencies, ...pkg.optionalDependencies, ...pkg.dependencies };
    for (const name of Object.keys(deps)) {
      const p = resolvePkg(dir, name, top);
      if (p) queue.push(p);
      else if (pkg.dependencies?.[name]) throw new Error(`${pkg.name} needs ${name}, not installed`);
    }
  }
  return seen;
}

/** Removes every package folder under top/node_modules that `keep` does not name. */
function prune(top: string, keep: Set<string>): void {
  const nm = join(top, 'node_modules');
  for (const e of readdirSync(nm)) {
    if (e.startsWith('.')) {
      rmSync(join(nm, e), { recursive: true, force: true });
      continue;
    }
    const dirs = e.startsWith('@') ? readdirSync(join(nm, e)).map((s) => join(nm, e, s)) : [join(nm, e)];
    for (const d of dirs) if (!keep.has(d)) rmSync(d, { recursive: true, force: true });
    if (e.startsWith('@') && readdirSync(join(nm, e)).length === 0) rmSync(join(nm, e), { recursive: true });
  }
}

/** Drops every node_modules/.bin: the artefact runs no package's command line tools. */
function removeBins(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === '.bin') rmSync(join(dir, e.name), { recursive: true, force: true });
    else removeBins(join(dir, e.name));
  }
}

/** Writes <dest>/node_modules for the target, with better-sqlite3's binary from `sqliteNode`. */
export function productionModules(t: Target, dest: string, sqliteNode: string): void {
  const work = join(cacheDir('build'), `modules-${t.arch}`);
  rmSync(work, { recursive: true, force: true });
  cpSync(join(root, 'package.json'), join(work, 'package.json'));
  cpSync(join(root, 'package-lock.json'), join(work, 'package-lock.json'));
  step(`installing production modules for linux-${t.arch} from the lockfile`);
  run(
    'npm',
    [
      'ci',
      '--omit=dev',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--os=linux',
      `--cpu=${t.arch}`,
      '--libc=glibc',
    ],
    { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  prune(work, closure(work, EXTERNAL));
  const nm = join(work, 'node_modules');
  // better-sqlite3: our binary in place of a build, and no sources (the SQLite amalgamation is 9 MB).
  const bs = join(nm, 'better-sqlite3');
  rmSync(join(bs, 'deps'), { recursive: true, force: true });
  rmSync(join(bs, 'src'), { recursive: true, force: true });
  cpSync(sqliteNode, join(bs, 'build', 'Release', 'better_sqlite3.node'));
  // onnxruntime-node ships every platform's binaries: keep this target's only.
  const ort = join(nm, 'onnxruntime-node', 'bin', 'napi-v6');
  for (const os of readdirSync(ort)) {
    if (os !== 'linux') rmSync(join(ort, os), { recursive: true, force: true });
  }
  for (const arch of readdirSync(join(ort, 'linux'))) {
    if (arch !== t.arch) rmSync(join(ort, 'linux', arch), { recursive: true, force: true });
  }
  if (!existsSync(join(ort, 'linux', t.arch)))
    throw new Error(`onnxruntime-node ships no linux-${t.arch} binary`);
  removeBins(nm);
  // Links kept as they are (cpSync would otherwise make relative links absolute, into this cache).
  cpSync(nm, join(dest, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  rmSync(work, { recursive: true, force: true });
}
