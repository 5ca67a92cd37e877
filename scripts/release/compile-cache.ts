// The V8 code cache an artefact ships in dist/compile-cache (src/cli/start.ts turns it on). Made by
// starting the staged artefact once with its own Node.js (under qemu-user for arm64 on an x86-64
// host) until /healthz answers, then SIGTERM: Node writes the cache of every module it compiled, with
// the functions the start ran, when the process exits. A code cache is only valid for the exact
// Node.js/V8 build and source bytes that made it (V8 rejects it otherwise and compiles as before);
// both ship in the same artefact, so they match. Portable: keyed by paths relative to the cache
// folder, so /opt/kapok and an unpacked tarball anywhere both hit.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch as hostArch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Arch, step } from './common.js';

const SYSROOT = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** The command that runs the staged artefact's node on this host. */
export function artefactNode(stage: string, arch: Arch): [string, string[]] {
  const node = join(stage, 'node', 'bin', 'node');
  if (arch === hostArch()) return [node, []];
  if (arch !== 'arm64') throw new Error(`no emulation for ${arch} on ${hostArch()}`);
  if (spawnSync('qemu-aarch64-static', ['--version']).status !== 0)
    throw new Error('qemu-aarch64-static not found: apt-get install -y qemu-user-static');
  return ['qemu-aarch64-static', ['-L', SYSROOT, node]];
}

/** Writes <stage>/dist/compile-cache; throws when the start fails or makes no cache. */
export async function writeCompileCache(stage: string, arch: Arch, limitMs = 900_000): Promise<number> {
  const dir = join(stage, 'dist', 'compile-cache');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'kapok-compile-cache-'));
  const [http, grpc, mqtt] = [await freePort(), await freePort(), await freePort()];
  const cfg = join(tmp, 'kapok.yaml');
  // Every capability a default start runs, on loopback ports and a throwaway data folder.
  writeFileSync(
    cfg,
    `http: { port: ${http}, host: 127.0.0.1 }\ngrpc: { port: ${grpc} }\ndataDir: ${join(tmp, 'data')}\nedge:\n  mqtt: { port: ${mqtt}, host: 127.0.0.1 }\n`,
  );
  const [cmd, pre] = artefactNode(stage, arch);
  const t0 = Date.now();
  step(
    `compile cache for ${arch}: starting the artefact once${cmd === 'qemu-aarch64-static' ? ' under qemu-user' : ''}`,
  );
  const child = spawn(cmd, [...pre, join(stage, 'dist', 'bundle', 'main.js'), 'up', '--config', cfg], {
    cwd: tmp,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_COMPILE_CACHE: dir, NODE_COMPILE_CACHE_PORTABLE: '1' },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`kapok up exited ${child.exitCode}: ${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${http}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() - t0 > limitMs) throw new Error(`no /healthz within ${limitMs / 1000} s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const readyMs = Date.now() - t0;
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) throw new Error(`kapok up exited ${code} after SIGTERM: ${stderr}`);
    const files = existsSync(dir) ? readdirSync(dir, { recursive: true }).length : 0;
    if (files === 0) throw new Error(`${dir} is empty after the start: Node.js wrote no compile cache`);
    step(`compile cache for ${arch}: /healthz after ${(readyMs / 1000).toFixed(1)} s, ${files} entries`);
    return readyMs;
  } finally {
    child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
}
