#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's own test runner (TypeScript through tsx). Node 20's
// `--test` takes no globs, so we list the files here. Extra arguments narrow the run:
//   npm test -- test/core            (files under a folder)   npm test -- config   (path substring)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('-'));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const files = walk(join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(', ')}`);
  process.exit(1);
}
// Tests that start `kapok` processes run one bundle of these sources (test/helpers/kapok-bin.ts):
// built here every run (esbuild, a few seconds), so it is never stale; one folder per run, so two
// runs at once never rebuild the bundle under each other's processes. Folders of runs that are
// gone are removed.
for (const name of existsSync(join(root, 'dist')) ? readdirSync(join(root, 'dist')) : []) {
  const pid = /^test-bundle-(\d+)$/.exec(name)?.[1];
  if (pid && !alive(Number(pid))) rmSync(join(root, 'dist', name), { recursive: true, force: true });
}
const bundleDir = join(root, 'dist', `test-bundle-${process.pid}`);
const bundled = spawnSync(process.execPath, [join(root, 'scripts/bundle.mjs'), '--outdir', bundleDir], {
  stdio: 'inherit',
  cwd: root,
});
if (bundled.status !== 0) {
  console.error('npm test: bundling the sources for the CLI tests failed (see above)');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...passthrough, ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, KAPOK_TEST_BUNDLE: join(bundleDir, 'main.js') } },
);
rmSync(bundleDir, { recursive: true, force: true });
process.exit(res.status ?? 1);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
