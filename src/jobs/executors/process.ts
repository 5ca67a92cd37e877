import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf } from '../../core/errors.js';
import { checkCheckpoint } from '../queries.js';
import type { AttemptResult } from '../transitions.js';
import { type Executor, type RunContext, Tail } from './types.js';

/**
 * The `process` executor: runs the task's argv on this machine, no shell, in its own process group
 * (so a timeout or cancel stops everything it started, and a restarted Kapok can stop an orphan).
 *
 * The child gets PATH, HOME, LANG, TZ and TMPDIR of Kapok (never its KAPOK_* settings, which may
 * hold secrets), the spec's env, and JOB_ID, TASK, ATTEMPT, CHECKPOINT_DIR, CUDA_VISIBLE_DEVICES
 * (the GPUs it was given), CHECKPOINT_EVERY_S, and with an earlier checkpoint CHECKPOINT_FILE
 * (inline data written there) or CHECKPOINT_URI and CHECKPOINT_SM3.
 *
 * It reports a checkpoint by printing one stdout line:
 *   ::kapok-checkpoint:: {"data":"<base64, ≤ 1 MiB>"}   or   ::kapok-checkpoint:: {"uri":"…","sm3":"<hex>"}
 * memoryMiB is applied as RLIMIT_DATA through prlimit(1) where it is installed (util-linux); cpu is
 * only counted by the scheduler. Output (stdout and stderr) is kept up to maxOutputBytes, the tail.
 */

const MARK = '::kapok-checkpoint::';
const PASS_ENV = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR'];
/** Longest stdout line looked at for a checkpoint (1 MiB in base64 and JSON around it). */
const MAX_LINE = 1_500_000;
/** Between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 3000;
const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p)) ?? null;

function childEnv(ctx: RunContext, ckptFile: string | null): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of PASS_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  const run = ctx.spec.run as { env?: Record<string, string> };
  Object.assign(env, run.env ?? {});
  env.JOB_ID = ctx.jobId;
  env.TASK = ctx.task;
  env.ATTEMPT = String(ctx.attempt);
  env.CHECKPOINT_DIR = ctx.checkpointDir;
  env.CUDA_VISIBLE_DEVICES = ctx.gpus.join(',');
  if (ctx.spec.checkpoint) env.CHECKPOINT_EVERY_S = String(ctx.spec.checkpoint.everyS);
  if (ckptFile) env.CHECKPOINT_FILE = ckptFile;
  if (ctx.checkpoint?.uri) {
    env.CHECKPOINT_URI = ctx.checkpoint.uri;
    env.CHECKPOINT_SM3 = ctx.checkpoint.sm3;
  }
  return env;
}

/** Stops a process group: SIGTERM, then SIGKILL after the grace; quiet when it is gone. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

export const processExecutor: Executor = async (ctx) => {
  const run = ctx.spec.run;
  if (run.executor !== 'process') throw new Error('processExecutor takes process tasks');
  mkdirSync(ctx.checkpointDir, { recursive: true });
  let ckptFile: string | null = null;
  if (ctx.checkpoint?.data) {
    ckptFile = join(ctx.checkpointDir, '.kapok-checkpoint');
    writeFileSync(ckptFile, ctx.checkpoint.data);
  }
  const argv = [...run.command];
  const mem = ctx.spec.resources.memoryMiB;
  if (mem > 0 && PRLIMIT) argv.unshift(PRLIMIT, `--data=${mem * 1024 * 1024}`, '--');
  const tail = new Tail(ctx.maxOutputBytes);
  if (ctx.signal.aborted)
    return { ok: false, failure: { class: 'signal' }, reason: 'cancelled before start' };

  return new Promise<AttemptResult>((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0] as string, argv.slice(1), {
        cwd: run.cwd ?? ctx.checkpointDir,
        env: childEnv(ctx, ckptFile),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      resolve({
        ok: false,
        failure: { class: 'spawn' },
        reason: `cannot start ${argv[0]}: ${messageOf(err)}`,
      });
      return;
    }
    let why: 'timeout' | 'cancelled' | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: 'timeout' | 'cancelled') => {
      if (why || child.pid === undefined) return;
      why = reason;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    const timer = ctx.timeoutMs === null ? undefined : setTimeout(() => stop('timeout'), ctx.timeoutMs);
    const onAbort = () => stop('cancelled');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) ctx.onPid?.(child.pid);

    // Checkpoints are stored in order, and before the attempt's result (a crash right after a
    // checkpoint line still hands it to the next attempt).
    let stored: Promise<void> = Promise.resolve();
    let line = '';
    let oversized = false;
    child.stdout?.on('data', (b: Buffer) => {
      let s = b.toString('utf8');
      let nl = s.indexOf('\n');
      while (nl !== -1) {
        const full = oversized ? '' : line + s.slice(0, nl);
        if (full.startsWith(MARK)) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(full.slice(MARK.length));
          } catch {
            parsed = null;
          }
          stored = stored.then(async () => {
            try {
              await ctx.onCheckpoint(checkCheckpoint(parsed));
            } catch (err) {
              tail.push(Buffer.from(`[kapok: checkpoint refused: ${messageOf(err)}]\n`));
            }
          });
        } else tail.push(Buffer.from(`${full}\n`));
        line = '';
        oversized = false;
        s = s.slice(nl + 1);
        nl = s.indexOf('\n');
      }
      if (!oversized) {
        line += s;
        if (line.length > MAX_LINE) {
          tail.push(Buffer.from(line));
          line = '';
          oversized = true;
        }
      }
    });
    child.stderr?.on('data', (b: Buffer) => tail.push(b));

    let settled = false;
    const finish = async (code: number | null, signal: NodeJS.Signals | null, spawnErr?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      ctx.signal.removeEventListener('abort', onAbort);
      // Nothing it started outlives the attempt (no duplicate work beside the retry).
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      if (line && !oversized) tail.push(Buffer.from(line));
      await stored;
      const output = tail.text();
      if (spawnErr)
        return resolve({
          ok: false,
          failure: { class: 'spawn' },
          reason: `cannot start ${argv[0]}: ${spawnErr.message}`,
          output,
        });
      if (why === 'timeout')
        return resolve({
          ok: false,
          failure: { class: 'timeout' },
          reason: `timed out after ${ctx.spec.timeoutS} s`,
          output,
        });
      if (why === 'cancelled')
        return resolve({ ok: false, failure: { class: 'signal' }, reason: 'cancelled', output });
      if (code === 0) return resolve({ ok: true, output });
      if (code !== null)
        return resolve({
          ok: false,
          failure: { class: 'exit', exitCode: code },
          reason: `exited with code ${code}`,
          output,
        });
      resolve({ ok: false, failure: { class: 'signal' }, reason: `killed by ${signal}`, output });
    };
    // A grandchild holding stdout open would keep 'close' from coming: end the group on exit.
    child.on('exit', () => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'));
    child.on('error', (err) => void finish(null, null, err));
    child.on('close', (code, signal) => void finish(code, signal));
  });
};
