import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { CAPABILITIES_OFF_ENV } from './config.js';

import { kapokArgv } from './kapok-bin.js';

const root = new URL('../../', import.meta.url).pathname;

/**
 * The environment a test's kapok process sees: ours minus any KAPOK_* and GOVERNMENT_ENV, plus `env`.
 * Every capability is on by default; a test's `kapok up` without a config file runs only those its
 * `env` turns on (a test with --config says what it wants in the file).
 */
function cleanEnv(env: Record<string, string>, args: readonly string[] = []): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('KAPOK_') && k !== 'GOVERNMENT_ENV') out[k] = v;
  const starts = args[0] === 'up';
  const hasConfig =
    args.some((a) => a === '--config' || a === '-c' || /\.ya?ml$/.test(a)) || env.KAPOK_CONFIG !== undefined;
  return { ...out, ...(starts && !hasConfig ? CAPABILITIES_OFF_ENV : {}), ...env };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `kapok <args>` to completion (see kapok-bin.ts for which build runs). */
export async function kapok(
  args: string[],
  env: Record<string, string> = {},
  cwd = root,
  /** Written to the command's stdin, which is then closed (`kapok config encrypt`). */
  input?: string,
): Promise<CliResult> {
  const child = spawn(process.execPath, [...kapokArgv(), ...args], { env: cleanEnv(env, args), cwd });
  if (input !== undefined) child.stdin.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

export interface Running {
  child: ChildProcess;
  port: number;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `kapok up` and resolves once it logged "kapok ready" (with the bound port). */
export async function kapokUp(
  env: Record<string, string>,
  args: string[] = [],
  timeoutMs = 20_000,
  /** `defaults`: every capability as a bare `kapok up` has it (on), in `cwd`. */
  opts: { defaults?: boolean; cwd?: string } = {},
): Promise<Running> {
  const base = { KAPOK_HTTP__PORT: '0', KAPOK_HTTP__HOST: '127.0.0.1', ...env };
  const child = spawn(process.execPath, [...kapokArgv(), 'up', ...args], {
    env: opts.defaults ? cleanEnv(base) : cleanEnv(base, ['up', ...args]),
    cwd: opts.cwd ?? root,
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A child left running would keep the test runner alive long after the failure.
      child.kill('SIGKILL');
      reject(new Error(`kapok up not ready in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    createInterface({ input: child.stdout }).on('line', (l) => {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(l);
      } catch {
        obj = { raw: l };
      }
      lines.push(obj);
      if (obj.msg === 'kapok ready') {
        clearTimeout(timer);
        resolve(Number(new URL(String(obj.url)).port));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kapok up exited ${code} before ready: ${stderr}`));
    });
  });
  return { child, port, lines, stderr: () => stderr, exited };
}

/** Starts `kapok <args>` and leaves it running (long-lived commands: `kapok demo`). */
export function kapokSpawn(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [...kapokArgv(), ...args], { env: cleanEnv(env, args), cwd: root });
}
