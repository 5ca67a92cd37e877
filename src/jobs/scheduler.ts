import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../ports/store.js';
import type { Capacity, Gpu, ScoreWeights } from './core.js';
import { killGroup } from './executors/process.js';
import type { Executor } from './executors/types.js';
import type { GpuInfo } from './gpus.js';
import { addCheckpoint, latestCheckpoint } from './queries.js';
import {
  type AttemptResult,
  type Claim,
  claimTasks,
  type Effects,
  findLost,
  finishAttempt,
  finishAttempts,
  type LostAttempt,
  recordPid,
  renewLeases,
} from './transitions.js';

/**
 * The Store-backed scheduler loop of one Kapok (docs/jobs.md#scheduling): claims ready tasks that
 * fit this worker (pure choice in core.ts), runs them with their executor, keeps their leases alive,
 * records each result, and takes over tasks whose lease ran out. Any number of Kapoks may run it
 * on one PostgreSQL; each claim and result is one conditional transaction.
 */

export interface SchedulerOptions {
  store: Store;
  /** This instance's id: lease owner and attempt owner (stable across restarts of the instance). */
  owner: string;
  dataDir: string;
  executors: Readonly<Record<string, Executor>>;
  weights: ScoreWeights;
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  /** Candidates read per claim (by class and age; scored in memory). */
  candidates: number;
  slots: number;
  cpu: number;
  memoryMiB: number;
  gpus: readonly GpuInfo[];
  /**
   * Reads the GPUs again (jobs.worker.gpus: auto): called on each heartbeat, as pull workers do, so
   * free memory, and GPUs that came or went, count from the next claim on.
   */
  readGpus?: () => Promise<GpuInfo[]>;
  /** Told the GPUs each time they were read again. */
  onGpus?: (gpus: readonly GpuInfo[]) => void;
  maxOutputBytes: number;
  logger?: Logger;
  onEffects?: (e: Effects) => void;
  onStarted?: (c: Claim, waitMs: number) => void;
  onEnded?: (c: Claim, runMs: number, res: AttemptResult) => void;
  now?: () => number;
  rand?: () => number;
}

/** A result waiting for the next group commit. */
interface Pending {
  c: Claim;
  res: AttemptResult;
  o: { weights: ScoreWeights; now: number; rand: number };
  done: (e: Effects | Error) => void;
}

/** Results recorded in one Store transaction at most. */
const BATCH = 64;

interface Running {
  claim: Claim;
  abort: AbortController;
  /** Set when the stop is ours (shutdown): the attempt is handed back, not counted. */
  released: boolean;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #running = new Map<string, Running>();
  #timer: NodeJS.Timeout | undefined;
  #beat: NodeJS.Timeout | undefined;
  #ticking = false;
  #again = false;
  #stopped = false;
  #firstRecovery = true;
  #lastRecovery = 0;
  #gpus: readonly GpuInfo[];
  #readingGpus = false;
  readonly #results: Pending[] = [];
  #recording = false;
  readonly #now: () => number;
  readonly #rand: () => number;

  constructor(o: SchedulerOptions) {
    this.#o = o;
    this.#gpus = o.gpus;
    this.#now = o.now ?? Date.now;
    this.#rand = o.rand ?? Math.random;
  }

  get running(): number {
    return this.#running.size;
  }

  /** The GPUs as last read. */
  get gpus(): readonly GpuInfo[] {
    return this.#gpus;
  }

  get allocatedGpus(): number {
    let n = 0;
    for (const r of this.#running.values()) n += r.claim.gpus.length;
    return n;
  }

  start(): void {
    this.#beat = setInterval(() => void this.#heartbeat(), this.#o.heartbeatMs);
    this.#beat.unref();
    this.wake();
  }

  /** Looks for work now (a job was submitted, a task finished). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), 0);
  }

  /** Stops the local attempts of a job (or one task) at once: cancel does not wait for a heartbeat. */
  abort(jobId: string, task?: string): void {
    for (const r of this.#running.values())
      if (r.claim.jobId === jobId && (task === undefined || r.claim.task === task)) r.abort.abort();
  }

  /** Stops claiming; running attempts are stopped and handed back to the queue uncounted. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#beat);
    const pending = [...this.#running.values()];
    for (const r of pending) {
      r.released = true;
      r.abort.abort();
    }
    const until = Date.now() + 10_000;
    while (this.#running.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  #capacity(): Capacity {
    const used = new Set<number>();
    let cpu = 0;
    let mem = 0;
    for (const r of this.#running.values()) {
      for (const g of r.claim.gpus) used.add(g);
      cpu += r.claim.spec.resources.cpu;
      mem += r.claim.spec.resources.memoryMiB;
    }
    const gpus: Gpu[] = this.#gpus
      .filter((g) => !used.has(g.index))
      .map((g) => ({ index: g.index, freeMiB: g.totalMiB - g.usedMiB }));
    return {
      gpus,
      cpu: this.#o.cpu - cpu,
      memoryMiB: this.#o.memoryMiB > 0 ? Math.max(0, this.#o.memoryMiB - mem) : 0,
      slots: this.#o.slots - this.#running.size,
    };
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    this.#ticking = true;
    let busy = false;
    try {
      const now = this.#now();
      if (this.#firstRecovery || now - this.#lastRecovery >= this.#o.heartbeatMs) await this.#recover(now);
      const cap = this.#capacity();
      if (cap.slots > 0) {
        const { claims, effects } = await claimTasks(this.#o.store, {
          owner: this.#o.owner,
          capacity: cap,
          now,
          weights: this.#o.weights,
          rand: this.#rand(),
          leaseMs: this.#o.leaseMs,
          candidates: this.#o.candidates,
          max: cap.slots,
          executors: Object.keys(this.#o.executors),
        });
        for (const e of effects) this.#o.onEffects?.(e);
        for (const c of claims) this.#launch(c, now);
        busy = claims.length > 0 && claims.length === cap.slots;
      }
    } catch (err) {
      this.#o.logger?.warn({ reason: messageOf(err) }, 'jobs: scheduling pass failed; trying again');
    } finally {
      this.#ticking = false;
    }
    if (this.#stopped) return;
    const soon = this.#again || busy;
    this.#again = false;
    this.#timer = setTimeout(() => void this.#tick(), soon ? 0 : this.#o.pollMs);
  }

  /** Tasks whose lease ran out (and, at start, those this instance held before it restarted). */
  async #recover(now: number): Promise<void> {
    const restarted = this.#firstRecovery ? this.#o.owner : null;
    this.#firstRecovery = false;
    this.#lastRecovery = now;
    const lost = await findLost(this.#o.store, now, restarted);
    for (const l of lost) {
      if (this.#running.has(`${l.jobId}\u0000${l.task}`)) continue;
      if (l.owner === this.#o.owner) stopOrphan(l);
      if (restarted !== null && l.owner === restarted) {
        // Our own crash is not the task's failure: hand it back uncounted (it resumes from its checkpoint).
        await releaseAttempt(this.#o.store, l, now, this.#o.weights, 'Kapok restarted');
        continue;
      }
      const e = await finishAttempt(
        this.#o.store,
        l,
        {
          ok: false,
          failure: { class: 'lost' },
          reason: `lease lost: the Kapok (${l.owner}) running it stopped`,
        },
        { weights: this.#o.weights, now, rand: this.#rand() },
      );
      this.#o.onEffects?.(e);
    }
  }

  #launch(claim: Claim, now: number): void {
    const key = `${claim.jobId}\u0000${claim.task}`;
    const r: Running = { claim, abort: new AbortController(), released: false };
    this.#running.set(key, r);
    this.#o.onStarted?.(claim, Math.max(0, now - claim.readyAt));
    void this.#run(r, now).finally(() => {
      this.#running.delete(key);
      this.wake();
    });
  }

  async #run(r: Running, startedAt: number): Promise<void> {
    const { claim } = r;
    const o = this.#o;
    let res: AttemptResult;
    try {
      const exec = o.executors[claim.spec.run.executor];
      if (!exec) throw new Error(`no executor ${claim.spec.run.executor} on this Kapok`);
      const checkpoint =
        claim.spec.checkpoint || claim.attemptInRun > 1 || claim.attempt > 1
          ? await latestCheckpoint(o.store, claim.jobId, claim.task)
          : null;
      res = await exec({
        jobId: claim.jobId,
        task: claim.task,
        attempt: claim.attempt,
        gpus: claim.gpus,
        spec: claim.spec,
        checkpointDir: join(o.dataDir, 'jobs', claim.jobId, claim.task),
        checkpoint,
        signal: r.abort.signal,
        timeoutMs: claim.spec.timeoutS === undefined ? null : Math.round(claim.spec.timeoutS * 1000),
        maxOutputBytes: o.maxOutputBytes,
        onCheckpoint: async (c) => {
          await addCheckpoint(o.store, claim.jobId, claim.task, claim.attempt, c, this.#now());
        },
        onPid: (pid) =>
          void recordPid(o.store, claim, pid).catch((err) =>
            o.logger?.warn({ reason: messageOf(err) }, 'jobs: pid not recorded'),
          ),
      });
    } catch (err) {
      res = { ok: false, failure: { class: 'spawn' }, reason: messageOf(err) };
    }
    const now = this.#now();
    o.onEnded?.(claim, now - startedAt, res);
    try {
      if (r.released) await releaseAttempt(o.store, claim, now, o.weights);
      else o.onEffects?.(await this.#record(claim, res, { weights: o.weights, now, rand: this.#rand() }));
    } catch (err) {
      // The lease runs out and another pass (here or elsewhere) settles it as lost.
      o.logger?.error(
        { job: claim.jobId, task: claim.task, reason: messageOf(err) },
        'jobs: result not recorded',
      );
    }
  }

  /**
   * Records a result. Group commit: results that end while a commit is under way wait for it and
   * go in the next transaction together (one commit, one WAL fsync on SQLite, for all of them); a
   * result alone is written at once, so nothing waits on a timer (docs/jobs.md#performance).
   */
  #record(c: Claim, res: AttemptResult, o: Pending['o']): Promise<Effects> {
    return new Promise<Effects>((resolve, reject) => {
      this.#results.push({ c, res, o, done: (e) => (e instanceof Error ? reject(e) : resolve(e)) });
      if (!this.#recording) void this.#recordAll();
    });
  }

  async #recordAll(): Promise<void> {
    this.#recording = true;
    try {
      while (this.#results.length > 0) {
        const batch = this.#results.splice(0, BATCH);
        const out = await finishAttempts(this.#o.store, batch).catch((err: unknown) =>
          batch.map(() => (err instanceof Error ? err : new Error(String(err)))),
        );
        for (const [i, p] of batch.entries()) p.done(out[i] ?? new Error('no result'));
      }
    } finally {
      this.#recording = false;
    }
  }

  /** One read at a time: nvidia-smi may take seconds (it has its own timeout), heartbeats do not wait. */
  async #refreshGpus(): Promise<void> {
    const read = this.#o.readGpus;
    if (!read || this.#readingGpus || this.#stopped) return;
    this.#readingGpus = true;
    try {
      const gpus = await read();
      if (this.#stopped) return;
      this.#gpus = gpus;
      this.#o.onGpus?.(gpus);
      this.wake(); // memory freed elsewhere, or a GPU that came back, may let a task start now
    } catch (err) {
      this.#o.logger?.warn({ reason: messageOf(err) }, 'jobs: GPUs not read again; keeping the last read');
    } finally {
      this.#readingGpus = false;
    }
  }

  async #heartbeat(): Promise<void> {
    void this.#refreshGpus();
    if (this.#running.size === 0) return;
    try {
      const claims = [...this.#running.values()].map((r) => r.claim);
      const lost = await renewLeases(this.#o.store, this.#o.owner, claims, this.#now() + this.#o.leaseMs);
      for (const c of lost) this.#running.get(`${c.jobId}\u0000${c.task}`)?.abort.abort();
    } catch (err) {
      this.#o.logger?.warn({ reason: messageOf(err) }, 'jobs: lease renewal failed');
    }
  }
}

/**
 * Hands an attempt stopped by our own shutdown back to the queue, ready now, without counting it
 * against maxAttempts (the next attempt gets the checkpoint).
 */
export async function releaseAttempt(
  store: Store,
  c: Pick<Claim, 'jobId' | 'task' | 'attempt'>,
  now: number,
  w: ScoreWeights,
  why = 'Kapok stopped',
): Promise<void> {
  await store.transaction(async (tx) => {
    const { rowCount } = await tx.execute(
      `UPDATE job_attempts SET state = 'interrupted', failure = ?, finished_at = ?
       WHERE job_id = ? AND task = ? AND attempt = ? AND state = 'running'`,
      [why, now, c.jobId, c.task, c.attempt],
    );
    if (rowCount !== 1) return;
    await tx.execute(
      `UPDATE job_tasks SET state = 'retrying', attempt_base = attempt_base + 1, ready_at = ?,
         prio_key = class_points - CAST(? AS DOUBLE PRECISION), lease_owner = NULL, lease_until = NULL,
         reason = ?
       WHERE job_id = ? AND name = ? AND attempt = ? AND state = 'running'`,
      [now, (w.agePerS * now) / 1000, `interrupted: ${why}`, c.jobId, c.task, c.attempt],
    );
  });
}

/**
 * A process this instance started before it was killed may still run (its own process group):
 * stop it before the task runs again. The pid is recorded just after the spawn, but a kill can land
 * between the two; without a pid, /proc is searched for the attempt's environment (JOB_ID, TASK,
 * ATTEMPT are set on every attempt's process). Either way the process is checked to be that attempt.
 */
function stopOrphan(l: LostAttempt): void {
  const marks = [`JOB_ID=${l.jobId}`, `TASK=${l.task}`, `ATTEMPT=${l.attempt}`];
  const isAttempt = (pid: number | string): boolean => {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      return marks.every((m) => env.includes(m));
    } catch {
      return false; // gone, or not ours to read
    }
  };
  if (l.pid !== null) {
    if (isAttempt(l.pid)) killGroup(l.pid, 'SIGKILL');
    return;
  }
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  } catch {
    return; // no /proc (not Linux): only recorded pids can be stopped
  }
  const own = processGroup('self');
  for (const pid of pids) {
    if (!isAttempt(pid)) continue;
    const group = processGroup(pid);
    if (group !== null && group !== own) killGroup(group, 'SIGKILL');
  }
}

/** The process group of a /proc entry (field 5 of its stat line, after the parenthesised name). */
function processGroup(pid: string): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return Number.isInteger(group) && group > 1 ? group : null;
  } catch {
    return null;
  }
}
