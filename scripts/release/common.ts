// Shared by the release steps: targets, the download/build cache, progress lines, child processes.
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type Arch = 'x64' | 'arm64';

export interface Target {
  arch: Arch;
  /** ELF e_machine name the gate expects of every binary. */
  elfMachine: 'x86-64' | 'aarch64';
  deb: 'amd64' | 'arm64';
  rpm: 'x86_64' | 'aarch64';
  /** Cross compiler prefix ('' = the host's). */
  cc: string;
  /** glibc's baseline symbol version for this architecture (what glibc-compat.c binds to). */
  glibcBase: string;
  /** _STAT_VER of the old __xstat64 ABI. */
  statVer: number;
}

export const TARGETS: Record<Arch, Target> = {
  x64: {
    arch: 'x64',
    elfMachine: 'x86-64',
    deb: 'amd64',
    rpm: 'x86_64',
    cc: '',
    glibcBase: 'GLIBC_2.2.5',
    statVer: 1,
  },
  arm64: {
    arch: 'arm64',
    elfMachine: 'aarch64',
    deb: 'arm64',
    rpm: 'aarch64',
    cc: 'aarch64-linux-gnu-',
    glibcBase: 'GLIBC_2.17',
    statVer: 0,
  },
};

/** Node.js 24 LTS, the runtime every artefact bundles (node-linux-<arch> on the npm registry). */
export const NODE_VERSION = process.env.KAPOK_RELEASE_NODE ?? '24.22.3';

/** Downloads and native builds are kept here between runs (keyed by version and arch). */
export function cacheDir(...parts: string[]): string {
  const dir = join(process.env.KAPOK_RELEASE_CACHE ?? join(homedir(), '.cache', 'kapok-release'), ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const t0 = Date.now();
/** One progress line with the elapsed time, so a long step is visibly alive. */
export function step(msg: string): void {
  process.stderr.write(`[release +${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);
}

/** Runs a command, inheriting stderr; throws with the command line and its exit status. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const res = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
    ...opts,
  });
  if (res.error) throw new Error(`${cmd}: ${res.error.message} (is it installed?)`);
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}`);
  return String(res.stdout ?? '');
}
