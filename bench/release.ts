import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CAPABILITIES_OFF,
  freePort,
  kapokBin,
  root,
  spawnProcess,
  stats,
  stop,
  tempDir,
  waitFor200,
} from './lib.js';

/**
 * The release artefacts (npm run release first): their sizes, and start to the first /healthz 200
 * of the x64 tarball's `kapok` (bundled Node.js 24, pruned node_modules) against the checkout's
 * `node dist/bundle/main.js` (this Node.js), alternating, on the empty platform as `startup` does.
 * The ratio is the figure: artefact / checkout. The arm64 smoke test's wall time under qemu is
 * printed by npm run release:smoke -- --arch arm64 (emulated: information, not a target).
 */
export async function release(runs = Number(process.env.KAPOK_BENCH_RUNS ?? 7)) {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const out = join(root, 'dist', 'release');
  const tarball = join(out, `kapok-${version}-linux-x64.tar.gz`);
  if (!existsSync(tarball)) throw new Error(`${tarball} not found: npm run release -- --arch x64 first`);
  const sizesMiB = Object.fromEntries(
    readdirSync(out)
      .filter((f) => statSync(join(out, f)).isFile())
      .sort()
      .map((f) => [f, Math.round((statSync(join(out, f)).size / 2 ** 20) * 10) / 10]),
  );
  const unpacked = tempDir();
  spawnSync('tar', ['xzf', tarball, '-C', unpacked.dir], { stdio: 'inherit' });
  const launcher = join(unpacked.dir, `kapok-${version}-linux-x64`, 'kapok');
  const artefact: number[] = [];
  const checkout: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      artefact.push(await readyMs([launcher, 'up']));
      checkout.push(await readyMs([process.execPath, kapokBin, 'up']));
      process.stderr.write(
        `  run ${i + 1}/${runs}: artefact ${artefact.at(-1)} ms, checkout ${checkout.at(-1)} ms\n`,
      );
    }
  } finally {
    unpacked.remove();
  }
  const a = stats(artefact);
  const c = stats(checkout);
  return {
    sizesMiB,
    artefactReadyMs: a,
    checkoutReadyMs: c,
    checkoutNode: process.version,
    ratio: { readyMs: Math.round((a.median / c.median) * 100) / 100 },
  };
}

async function readyMs(cmd: string[]): Promise<number> {
  const port = await freePort();
  const tmp = tempDir();
  const t0 = performance.now();
  const child = spawnProcess(cmd, {
    KAPOK_HTTP__PORT: String(port),
    KAPOK_HTTP__HOST: '127.0.0.1',
    ...CAPABILITIES_OFF,
    KAPOK_DATA_DIR: tmp.dir,
    KAPOK_LOG__LEVEL: 'warn',
  });
  try {
    const ms = await waitFor200(`http://127.0.0.1:${port}/healthz`, t0, child);
    await stop(child);
    return Math.round(ms);
  } finally {
    child.kill('SIGKILL');
    tmp.remove();
  }
}
