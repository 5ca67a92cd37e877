import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Capacity } from './core.js';
import { EXECUTORS } from './executors/index.js';
import { killGroup } from './executors/process.js';
import type { Executor } from './executors/types.js';
import { type GpuFlag, type GpuInfo, gpusOf } from './gpus.js';
import { PULL_EXECUTORS } from './pull.js';
import type { Checkpoint } from './queries.js';
import type { TaskSpec } from './spec.js';
import type { AttemptResult } from './transitions.js';

/**
 * `kapok worker` (docs/jobs.md#pull-workers): a process on another machine that leases tasks from
 * a Kapok over HTTP, runs them here with the same executors a Kapok uses (process, http, noop),
 * renews the leases with heartbeats (reporting its GPUs again each time, read anew from nvidia-smi
 * under `--gpus auto`), and reports checkpoints and results. Killed, it loses its tasks when the
 * leases run out and the Kapok retries them; restarted on the same dataDir, it first stops the
 * processes its killed self left running (recorded by pid, checked in /proc).
 */

export interface PullWorkerOptions {
  /** The Kapok's base URL (http://host:8080). */
  url: string;
  token: string;
  /** This worker's name, unique per token: the ledger's owner is worker:<token name>:<id>. */
  id: string;
  gpus: GpuFlag;
  nvidiaSmi?: string;
  slots: number;
  cpu: number;
  memoryMiB: number;
  /** Checkpoint directories and the pid records of running attempts. */
  dataDir: string;
  /** How often to ask for work when idle. */
  pollMs: number;
  logger?: Logger;
}

interface Leased {
  jobId: string;
  task: string;
  attempt: number;
  attemptInRun: number;
  gpus: number[];
  spec: TaskSpec;
  checkpoint: (Omit<Checkpoint, 'data'> & { data: string | null }) | null;
}

interface Running {
  t: Leased;
  abort: AbortController;
}

export class PullWorker {
  readonly #o: PullWorkerOptions;
  readonly #running = new Map<string, Running>();
  readonly #exec: Readonly<Record<string, Executor>>;
  #gpus: GpuInfo[] = [];
  #heartbeatMs = 5000;
  #leaseMs = 30_000;
  #maxOutputBytes = 64 * 1024;
  #timer: NodeJS.Timeout | undefined;
  #beat: NodeJS.Timeout | undefined;
  #stopped = false;
  #polling = false;

  constructor(o: PullWorkerOptions) {
    if (!/^https?:\/\//.test(o.url))
      throw new KapokError('KAPOK_CONFIG_INVALID', `--url ${o.url}: expected http(s)://host:port of a Kapok`);
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(o.id))
      throw new KapokError('KAPOK_CONFIG_INVALID', '--id: 1-128 letters, digits, . _ : -');
    if (!Number.isInteger(o.slots) || o.slots < 1 || o.slots > 64)
      throw new KapokError('KAPOK_CONFIG_INVALID', '--slots: a whole number from 1 to 64');
    this.#o = { ...o, url: o.url.replace(/\/+$/, '') };
    this.#exec = Object.fromEntries(PULL_EXECUTORS.map((e) => [e, EXECUTORS[e] as Executor]));
  }

  get running(): number {
    return this.#running.size;
  }

  /** Stops orphans of a killed predecessor, reads the GPUs, and starts asking for work. */
  async start(): Promise<void> {
    this.#stopOrphans();
    this.#gpus = await gpusOf(this.#o.gpus, this.#o.nvidiaSmi);
    this.#o.logger?.info(
      { url: this.#o.url, id: this.#o.id, gpus: this.#gpus, slots: this.#o.slots },
      'kapok worker: asking for work',
    );
    this.#schedule(0);
    this.#beating();
  }

  /** Stops asking; running attempts are stopped (their leases run out and the Kapok retries them). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#beat);
    for (const r of this.#running.values()) r.abort.abort();
    const until = Date.now() + 10_000;
    while (this.#running.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  async #call<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(`${this.#o.url}/api/jobs/workers/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.#o.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let code = 'KAPOK_JOBS_WORKER_BAD_REQUEST';
      let message = text.slice(0, 300);
      try {
        const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
        code = e?.code ?? code;
        message = e?.message ?? message;
      } catch {
        // Not ours: keep the text.
      }
      throw Object.assign(new Error(`${res.status} ${code}: ${message}`), { status: res.status, code });
    }
    return JSON.parse(text) as T;
  }

  #inventory() {
    return {
      worker: this.#o.id,
      gpus: this.#gpus,
      slots: this.#o.slots,
      cpu: this.#o.cpu,
      memoryMiB: this.#o.memoryMiB,
    };
  }

  #free(): Capacity {
    const used = new Set<number>();
    let cpu = 0;
    let mem = 0;
    for (const { t } of this.#running.values()) {
      for (const g of t.gpus) used.add(g);
      cpu += t.spec.resources.cpu;
      mem += t.spec.resources.memoryMiB;
    }
    return {
      gpus: this.#gpus
        .filter((g) => !used.has(g.index))
        .map((g) => ({ index: g.index, freeMiB: g.totalMiB - g.usedMiB })),
      cpu: this.#o.cpu - cpu,
      memoryMiB: this.#o.memoryMiB > 0 ? Math.max(0, this.#o.memoryMiB - mem) : 0,
      slots: this.#o.slots - this.#running.size,
    };
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#poll(), ms);
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    let next = this.#o.pollMs;
    try {
      const free = this.#free();
      if (free.slots > 0) {
        const r = await this.#call<{
          leaseMs: number;
          heartbeatMs: number;
          maxOutputBytes: number;
          tasks: Leased[];
        }>('lease', { ...this.#inventory(), executors: [...PULL_EXECUTORS], free });
        this.#leaseMs = r.leaseMs;
        this.#heartbeatMs = r.heartbeatMs;
        this.#maxOutputBytes = r.maxOutputBytes;
        for (const t of r.tasks) this.#launch(t);
        // Full slots taken: ask again at once (more may be ready).
        if (r.tasks.length > 0 && r.tasks.length === free.slots) next = 0;
      }
    } catch (err) {
      this.#o.logger?.warn({ reason: messageOf(err) }, 'kapok worker: lease request failed; asking again');
      next = Math.max(next, 1000);
    } finally {
      this.#polling = false;
    }
    this.#schedule(next);
  }

  #beating(): void {
    if (this.#stopped) return;
    this.#beat = setTimeout(async () => {
      await this.#heartbeat();
      this.#beating();
    }, this.#heartbeatMs);
  }

  async #heartbeat(): Promise<void> {
    try {
      // Free GPU memory changes under other users' work: read again on every heartbeat.
      this.#gpus = await gpusOf(this.#o.gpus, this.#o.nvidiaSmi);
      const running = [...this.#running.values()].map(({ t }) => ({
        jobId: t.jobId,
        task: t.task,
        attempt: t.attempt,
      }));
      const r = await this.#call<{
        lost: Array<{ jobId: string; task: string; attempt: number }>;
        heartbeatMs: number;
      }>('heartbeat', { ...this.#inventory(), running });
      this.#heartbeatMs = r.heartbeatMs;
      for (const l of r.lost) {
        const x = this.#running.get(key(l));
        if (x && x.t.attempt === l.attempt) x.abort.abort();
      }
    } catch (err) {
      this.#o.logger?.warn({ reason: messageOf(err) }, 'kapok worker: heartbeat failed');
    }
  }

  #launch(t: Leased): void {
    const r: Running = { t, abort: new AbortController() };
    this.#running.set(key(t), r);
    void this.#run(r).finally(() => {
      this.#running.delete(key(t));
      this.#schedule(0);
    });
  }

  async #run({ t, abort }: Running): Promise<void> {
    const o = this.#o;
    const ref = { worker: o.id, jobId: t.jobId, task: t.task, attempt: t.attempt };
    const pidFile = join(o.dataDir, 'pids', `${t.jobId}.${t.task}.${t.attempt}`);
    let res: AttemptResult;
    try {
      const exec = this.#exec[t.spec.run.executor];
      if (!exec) throw new Error(`kapok worker runs no ${t.spec.run.executor} tasks`);
      res = await exec({
        jobId: t.jobId,
        task: t.task,
        attempt: t.attempt,
        gpus: t.gpus,
        spec: t.spec,
        checkpointDir: join(o.dataDir, 'jobs', t.jobId, t.task),
        checkpoint: t.checkpoint && {
          ...t.checkpoint,
          data: t.checkpoint.data === null ? null : Buffer.from(t.checkpoint.data, 'base64'),
        },
        signal: abort.signal,
        timeoutMs: t.spec.timeoutS === undefined ? null : Math.round(t.spec.timeoutS * 1000),
        maxOutputBytes: this.#maxOutputBytes,
        onCheckpoint: async (c) => {
          const checkpoint = 'data' in c ? { data: Buffer.from(c.data).toString('base64') } : c;
          await this.#call('checkpoint', { ...ref, checkpoint });
        },
        onPid: (pid) => {
          mkdirSync(join(o.dataDir, 'pids'), { recursive: true });
          writeFileSync(pidFile, String(pid));
        },
      });
    } catch (err) {
      res = { ok: false, failure: { class: 'spawn' }, reason: messageOf(err) };
    }
    rmSync(pidFile, { force: true });
    if (abort.signal.aborted && this.#stopped) return; // our stop: the lease runs out, the Kapok retries
    // The report is retried while the lease could still be ours; a lost lease is not retried.
    const until = Date.now() + this.#leaseMs;
    const body = res.ok
      ? { ...ref, ok: true, output: res.output }
      : { ...ref, ok: false, failure: res.failure, reason: res.reason.slice(0, 2000), output: res.output };
    for (let wait = 200; ; wait = Math.min(wait * 2, 5000)) {
      try {
        await this.#call('result', body);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'KAPOK_JOBS_LEASE_LOST' || Date.now() + wait > until || this.#stopped) {
          o.logger?.warn(
            { job: t.jobId, task: t.task, reason: messageOf(err) },
            'kapok worker: result not recorded',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Processes a killed worker started (pid records) that still run their attempt: stopped. */
  #stopOrphans(): void {
    const dir = join(this.#o.dataDir, 'pids');
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      return;
    }
    for (const f of files) {
      const [jobId, task, attempt] = [
        f.slice(0, 36),
        f.slice(37, f.lastIndexOf('.')),
        f.slice(f.lastIndexOf('.') + 1),
      ];
      try {
        const pid = Number(readFileSync(join(dir, f), 'utf8'));
        const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        if (
          env.includes(`JOB_ID=${jobId}`) &&
          env.includes(`TASK=${task}`) &&
          env.includes(`ATTEMPT=${attempt}`)
        ) {
          killGroup(pid, 'SIGKILL');
          this.#o.logger?.info(
            { job: jobId, task, attempt: Number(attempt), pid },
            'kapok worker: stopped an orphaned attempt',
          );
        }
      } catch {
        // Gone, or not ours to read.
      }
      rmSync(join(dir, f), { force: true });
    }
  }
}

const key = (t: { jobId: string; task: string }) => `${t.jobId}\u0000${t.task}`;
