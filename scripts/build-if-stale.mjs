#!/usr/bin/env node
// `npm start` builds only when the bundle is missing or older than what it is built from (sources,
// package files, build scripts): a second start does not pay ~20 s of tsc + esbuild for nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const target = join(root, 'dist/bundle/main.js');

function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const name of readdirSync(path)) m = Math.max(m, newest(join(path, name)));
  return m;
}

const inputs = [
  'src',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'scripts/bundle.mjs',
  'scripts/bundle-console.mjs',
  'web',
]
  .map((p) => join(root, p))
  .filter((p) => existsSync(p));
const stale = !existsSync(target) || inputs.some((p) => newest(p) > statSync(target).mtimeMs);
if (stale) {
  const r = spawnSync('npm', ['run', 'build'], { stdio: 'inherit', cwd: root });
  process.exit(r.status ?? 1);
}
