import type { Queryable, Store } from '../ports/store.js';
import {
  type Candidate,
  type Capacity,
  decideRetry,
  type Failure,
  fitsDeadline,
  type JobState,
  jobStateOf,
  pickNext,
  type ScoreWeights,
  score,
  type TaskState,
} from './core.js';
import type { TaskSpec } from './spec.js';

/**
 * Every state change of a task, each in one Store transaction (docs/jobs.md#durability). Writes are
 * conditional on the state (and attempt) read, so two schedulers sharing a PostgreSQL never both
 * act on one task: the loser's UPDATE changes no row and it steps back.
 */

export interface Claim {
  jobId: string;
  task: string;
  /** The ledger's attempt number (grows across explicit retries of the job). */
  attempt: number;
  /** Attempt within this run of the task (1 = first), what maxAttempts counts. */
  attemptInRun: number;
  gpus: number[];
  spec: TaskSpec;
  deadline: number | null;
  /** When it became ready (its wait is started − readyAt). */
  readyAt: number;
}

/** What a transition leads to, for events and metrics (published after commit). */
export interface Effects {
  taskFailed?: { jobId: string; task: string; reason: string };
  retried?: { jobId: string; task: string; at: number };
  jobFinished?: { jobId: string; state: JobState };
}

export interface Ctx {
  weights: ScoreWeights;
  now: number;
  /** In [0, 1): the jitter draw. */
  rand: number;
}

const TERMINAL_SQL = `'succeeded', 'failed', 'cancelled', 'skipped'`;
const CHUNK = 500;

interface TaskRow {
  job_id: string;
  name: string;
  dependents: string;
  on_failure: 'fail' | 'continue';
  attempt: number;
  attempt_base: number;
  spec: string;
  deadline: number | string | null;
  expected_s: number | null;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

interface CandidateRow {
  job_id: string;
  name: string;
  attempt: number;
  deadline: number | null;
  expected_s: number | null;
  priority: string;
  ready_at: number;
  prio_key: number;
  gpus: number;
  gpu_memory_mib: number;
  cpu: number;
  memory_mib: number;
}

/** What scoring and fitting read (spec, dependents and the rest come back with the claim's UPDATE). */
const CANDIDATE_COLS =
  'job_id, name, attempt, deadline, expected_s, priority, ready_at, prio_key, gpus, gpu_memory_mib, cpu, memory_mib';
/** Every integer here is small (counts, MiB, ms timestamps): no BigInt per value (QueryOptions). */
const SMALL = { smallIntegers: true } as const;
/**
 * Points within which a pick and the unread rows' bound count as tied: prio_key and the age term are
 * each ~1.7e9 (seconds since the epoch), where a double's step is ~2.4e-7, so their sum is not exact.
 */
const TIE = 1e-3;

/**
 * Claims what this worker starts now: candidates by prio_key, scored and fitted in memory.
 *
 * A claim first reads a short page (a few rows more than it may start) plus the same number of
 * ready rows that have a deadline (a partial index): a row it did not read has a prio_key at most
 * the page's last, so its score is at most that plus the age term, plus the urgency points only if
 * it has a deadline, which it can only have if the deadline page was full too. When every pick
 * scores at least that bound, and as many were picked as may start, no unread row could outscore a
 * pick and the full `candidates` page is not read (docs/jobs.md#performance); else it is. A row that
 * only ties a pick is left to the page's order, as rows tied at the full page's edge always were.
 */
export async function claimTasks(
  store: Store,
  o: Ctx & {
    owner: string;
    capacity: Capacity;
    leaseMs: number;
    candidates: number;
    max: number;
    /** Only tasks of these executors (a pull worker runs no inference); all when absent. */
    executors?: readonly string[];
  },
): Promise<{ claims: Claim[]; effects: Effects[] }> {
  const lock = store.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
  const ex = o.executors ?? [];
  const only = ex.length ? ` AND executor IN (${ex.map(() => '?').join(', ')})` : '';
  const ready = `FROM job_tasks WHERE ready_at IS NOT NULL AND ready_at <= ?${only}`;
  const page = Math.min(o.candidates, Math.max(8, 2 * o.max));
  return store.transaction(async (tx) => {
    const effects: Effects[] = [];
    const byKey = new Map<string, CandidateRow>();
    const cands: Candidate[] = [];
    /** Adds rows not seen yet as candidates; fails those that can no longer meet their deadline. */
    const take = async (rows: readonly CandidateRow[]) => {
      for (const r of rows) {
        const key = `${r.job_id}\u0000${r.name}`;
        if (byKey.has(key)) continue;
        if (!fitsDeadline(o.now, r.deadline, r.expected_s)) {
          const why = `deadline: cannot finish before ${new Date(r.deadline ?? 0).toISOString()}`;
          const [full] = await tx.query<TaskRow>(
            `SELECT job_id, name, dependents, on_failure, attempt, attempt_base, spec, deadline, expected_s
             FROM job_tasks WHERE job_id = ? AND name = ?`,
            [r.job_id, r.name],
          );
          if (full) effects.push(await failTask(tx, full, why, o, ['queued', 'retrying']));
          continue;
        }
        byKey.set(key, r);
        cands.push({
          key,
          priority: r.priority,
          readyAt: r.ready_at,
          deadline: r.deadline,
          expectedS: r.expected_s,
          gpus: r.gpus,
          gpuMemoryMiB: r.gpu_memory_mib,
          cpu: r.cpu,
          memoryMiB: r.memory_mib,
        });
      }
    };
    /** The whole jobs.candidates page, then the picks from everything read. */
    const fullPage = async () => {
      await take(
        await tx.query<CandidateRow>(
          `SELECT ${CANDIDATE_COLS} ${ready} ORDER BY prio_key DESC LIMIT ?${lock}`,
          [o.now, ...ex, o.candidates],
          SMALL,
        ),
      );
      return pickNext(cands, o.capacity, o.now, o.weights, o.max);
    };
    let picks: ReturnType<typeof pickNext>;
    if (page < o.candidates) {
      // One statement for both pages (FOR UPDATE sits inside each sub-select on PostgreSQL).
      const rows = await tx.query<CandidateRow & { part: number }>(
        `SELECT * FROM (SELECT ${CANDIDATE_COLS}, 0 AS part ${ready} ORDER BY prio_key DESC LIMIT ?${lock}) a
         UNION ALL
         SELECT * FROM (SELECT ${CANDIDATE_COLS}, 1 AS part ${ready} AND deadline IS NOT NULL
           ORDER BY prio_key DESC LIMIT ?${lock}) b`,
        [o.now, ...ex, page, o.now, ...ex, page],
        SMALL,
      );
      // Counts and the lowest prio_key of each page (a UNION's row order is not promised).
      let n0 = 0;
      let n1 = 0;
      let low0 = Number.POSITIVE_INFINITY;
      let low1 = Number.POSITIVE_INFINITY;
      for (const r of rows) {
        if (r.part === 0) {
          n0++;
          low0 = Math.min(low0, r.prio_key);
        } else {
          n1++;
          low1 = Math.min(low1, r.prio_key);
        }
      }
      await take(rows);
      picks = pickNext(cands, o.capacity, o.now, o.weights, o.max);
      const age = (o.weights.agePerS * o.now) / 1000;
      const bound =
        n0 < page
          ? Number.NEGATIVE_INFINITY // every ready row was read
          : Math.max(low0 + age, n1 < page ? Number.NEGATIVE_INFINITY : low1 + age + o.weights.urgency);
      const settled =
        bound === Number.NEGATIVE_INFINITY ||
        (picks.length === o.max && picks.every((p) => score(p.candidate, o.now, o.weights) >= bound - TIE));
      if (!settled) {
        picks = await fullPage();
      }
    } else {
      picks = await fullPage();
    }
    const claims: Claim[] = [];
    const jobs = new Set<string>();
    for (const { candidate, gpus } of picks) {
      const r = byKey.get(candidate.key) as CandidateRow;
      const [got] = await tx.query<{ spec: string; attempt_base: number }>(
        `UPDATE job_tasks SET state = 'running', attempt = attempt + 1, ready_at = NULL, prio_key = NULL,
           lease_owner = ?, lease_until = ?, started_at = COALESCE(started_at, ?), reason = NULL
         WHERE job_id = ? AND name = ? AND attempt = ? AND ready_at IS NOT NULL RETURNING spec, attempt_base`,
        [o.owner, o.now + o.leaseMs, o.now, r.job_id, r.name, r.attempt],
        SMALL,
      );
      if (!got) continue;
      const attempt = r.attempt + 1;
      // The ledger's key (job, task, attempt) refuses a second start of one attempt anywhere.
      await tx.execute(
        `INSERT INTO job_attempts (job_id, task, attempt, owner, gpus, state, started_at) VALUES (?, ?, ?, ?, ?, 'running', ?)`,
        [r.job_id, r.name, attempt, o.owner, JSON.stringify(gpus), o.now],
      );
      jobs.add(r.job_id);
      claims.push({
        jobId: r.job_id,
        task: r.name,
        attempt,
        attemptInRun: attempt - got.attempt_base,
        gpus,
        spec: JSON.parse(got.spec) as TaskSpec,
        deadline: r.deadline,
        readyAt: r.ready_at,
      });
    }
    for (const id of jobs)
      await tx.execute(
        `UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'`,
        [o.now, id],
      );
    return { claims, effects };
  });
}

export type AttemptResult =
  | { ok: true; output?: string }
  | { ok: false; failure: Failure; reason: string; output?: string };

/**
 * Records how an attempt ended and moves the task on: Succeeded (dependents released), Retrying
 * (after the backoff), or Failed. A no-op when the attempt was already settled (lost, cancelled).
 */
export async function finishAttempt(
  store: Store,
  c: Pick<Claim, 'jobId' | 'task' | 'attempt'> & { owner?: string },
  res: AttemptResult,
  o: Ctx,
): Promise<Effects> {
  return store.transaction((tx) => finishAttemptIn(tx, c, res, o));
}

/**
 * Several results in one Store transaction (one commit: on SQLite one WAL fsync for all). Each is
 * conditional as in finishAttempt, so one already settled elsewhere is a no-op ({}). Should the
 * batch fail as a whole, each is recorded again alone, so one bad result never loses the others.
 */
export async function finishAttempts(
  store: Store,
  items: ReadonlyArray<{ c: Pick<Claim, 'jobId' | 'task' | 'attempt'>; res: AttemptResult; o: Ctx }>,
): Promise<Array<Effects | Error>> {
  if (items.length === 1) {
    const [{ c, res, o }] = items as [(typeof items)[number]];
    return [await finishAttempt(store, c, res, o).catch((e: unknown) => asError(e))];
  }
  try {
    return await store.transaction(async (tx) => {
      const out: Effects[] = [];
      // Successes in a row are settled one by one, then their dependents and job counters moved
      // once for all (a fan-in's join: one UPDATE of deps_left − k, not k of − 1). Anything else
      // flushes them first, so it sees the same rows as when each was recorded alone.
      let run: Succeeded[] = [];
      const flush = async () => {
        if (run.length) Object.assign(out, await closeSucceeded(tx, run));
        run = [];
      };
      for (const { c, res, o } of items) {
        if (!res.ok) await flush();
        const s = await settleAttemptIn(tx, c, res, o);
        if ('effects' in s) out.push(s.effects);
        else run.push({ ...s, slot: out.push({}) - 1, now: o.now, weights: o.weights });
      }
      await flush();
      return out;
    });
  } catch {
    const out: Array<Effects | Error> = [];
    for (const { c, res, o } of items)
      out.push(await finishAttempt(store, c, res, o).catch((e: unknown) => asError(e)));
    return out;
  }
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

async function finishAttemptIn(
  tx: Queryable,
  c: Pick<Claim, 'jobId' | 'task' | 'attempt'> & { owner?: string },
  res: AttemptResult,
  o: Ctx,
): Promise<Effects> {
  const s = await settleAttemptIn(tx, c, res, o);
  if ('effects' in s) return s.effects;
  return (await closeSucceeded(tx, [{ ...s, slot: 0, now: o.now, weights: o.weights }]))[0] ?? {};
}

/** A success recorded on its attempt and task, its dependents and job counter not moved yet. */
interface Succeeded {
  task: Pick<TaskRow, 'job_id' | 'dependents'>;
  /** Its place in the batch's results (the job's end is reported on the last of the job's). */
  slot: number;
  now: number;
  weights: Ctx['weights'];
}

/** Records how an attempt ended: a failure in full, a success up to closeSucceeded. */
async function settleAttemptIn(
  tx: Queryable,
  c: Pick<Claim, 'jobId' | 'task' | 'attempt'> & { owner?: string },
  res: AttemptResult,
  o: Ctx,
): Promise<{ effects: Effects } | { task: TaskRow }> {
  {
    // With an owner (a pull worker's report): only the attempt it still holds.
    const mine = c.owner === undefined ? '' : ' AND owner = ?';
    const { rowCount } = await tx.execute(
      `UPDATE job_attempts SET state = ?, failure = ?, exit_code = ?, output = ?, finished_at = ?
       WHERE job_id = ? AND task = ? AND attempt = ? AND state = 'running'${mine}`,
      [
        res.ok ? 'succeeded' : 'failed',
        res.ok ? null : res.reason,
        res.ok ? 0 : (res.failure.exitCode ?? null),
        res.output ?? null,
        o.now,
        c.jobId,
        c.task,
        c.attempt,
        ...(c.owner === undefined ? [] : [c.owner]),
      ],
    );
    if (rowCount !== 1) return { effects: {} };
    // A success settles the task in this same statement (one statement less per completion).
    const [r] = await tx.query<TaskRow>(
      `UPDATE job_tasks SET lease_owner = NULL, lease_until = NULL${
        res.ok ? `, state = 'succeeded', finished_at = ?` : ''
      }
       WHERE job_id = ? AND name = ? AND attempt = ? AND state = 'running'
       RETURNING job_id, name, dependents, on_failure, attempt, attempt_base, spec, deadline, expected_s`,
      res.ok ? [o.now, c.jobId, c.task, c.attempt] : [c.jobId, c.task, c.attempt],
      SMALL,
    );
    if (!r) return { effects: {} };
    if (res.ok) return { task: r };
    const spec = JSON.parse(r.spec) as TaskSpec;
    const d = decideRetry(
      spec.retry,
      r.attempt - r.attempt_base,
      res.failure,
      o.now,
      o.rand,
      num(r.deadline),
      r.expected_s,
    );
    if (d.retry) {
      await tx.execute(
        `UPDATE job_tasks SET state = 'retrying', ready_at = ?, prio_key = class_points - CAST(? AS DOUBLE PRECISION),
           reason = ? WHERE job_id = ? AND name = ?`,
        [d.at, (o.weights.agePerS * d.at) / 1000, res.reason.slice(0, 1000), r.job_id, r.name],
      );
      return { effects: { retried: { jobId: r.job_id, task: r.name, at: d.at } } };
    }
    const why =
      d.reason === 'attempts'
        ? `${res.reason} (attempt ${r.attempt - r.attempt_base} of ${spec.retry.maxAttempts})`
        : d.reason === 'deadline'
          ? `${res.reason}; no retry: it could not finish before the deadline`
          : `${res.reason}; not retried (retryOn)`;
    return { effects: await failTask(tx, r, why, o, ['running']) };
  }
}

/**
 * Moves on what successes release: each dependent's deps_left drops by how many of its needs
 * succeeded here (ready when that reaches 0, at the time of the last), and each job's open_tasks by
 * its successes. Returns the results by slot: a job's end on its last success.
 */
async function closeSucceeded(tx: Queryable, done: readonly Succeeded[]): Promise<Effects[]> {
  /** job → dependent → [count, time of the last, weights]. */
  const deps = new Map<string, Map<string, { k: number; now: number; weights: Ctx['weights'] }>>();
  const jobs = new Map<string, { n: number; now: number; slot: number }>();
  for (const d of done) {
    const jobId = d.task.job_id;
    let mine = deps.get(jobId);
    if (!mine) {
      mine = new Map();
      deps.set(jobId, mine);
    }
    for (const name of JSON.parse(d.task.dependents) as string[]) {
      const e = mine.get(name);
      if (e) {
        e.k++;
        e.now = Math.max(e.now, d.now);
      } else mine.set(name, { k: 1, now: d.now, weights: d.weights });
    }
    const j = jobs.get(jobId);
    jobs.set(jobId, { n: (j?.n ?? 0) + 1, now: Math.max(j?.now ?? 0, d.now), slot: d.slot });
  }
  for (const [jobId, mine] of deps) {
    // One statement per (count, time): a fan-out shares both, a fan-in's join is one row.
    const groups = new Map<string, { k: number; now: number; weights: Ctx['weights']; names: string[] }>();
    for (const [name, e] of mine) {
      const key = `${e.k}:${e.now}`;
      const g = groups.get(key);
      if (g) g.names.push(name);
      else groups.set(key, { ...e, names: [name] });
    }
    for (const g of groups.values()) await releaseDependents(tx, jobId, g.names, g.k, g.now, g.weights);
  }
  const out: Effects[] = [];
  for (const [jobId, j] of jobs) out[j.slot] = await closeTasks(tx, jobId, j.n, j.now);
  return out;
}

/** Fails a task in one of `from` states; skips the job's pending tasks unless onFailure: continue. */
async function failTask(
  tx: Queryable,
  r: TaskRow,
  reason: string,
  o: Ctx,
  from: TaskState[],
): Promise<Effects> {
  const { rowCount } = await tx.execute(
    `UPDATE job_tasks SET state = 'failed', ready_at = NULL, prio_key = NULL, lease_owner = NULL, lease_until = NULL,
       reason = ?, finished_at = ? WHERE job_id = ? AND name = ? AND state IN (${from.map(() => '?').join(', ')})`,
    [reason.slice(0, 1000), o.now, r.job_id, r.name, ...from],
  );
  if (rowCount !== 1) return {};
  let closed = 1;
  if (r.on_failure === 'continue')
    await releaseDependents(tx, r.job_id, JSON.parse(r.dependents) as string[], 1, o.now, o.weights);
  else closed += await skipPending(tx, r.job_id, `job failing: task ${r.name} failed`, o.now);
  const effects = await closeTasks(tx, r.job_id, closed, o.now);
  return { ...effects, taskFailed: { jobId: r.job_id, task: r.name, reason } };
}

/** `k` needs of each named task succeeded at `now`: the ones with no need left become ready. */
async function releaseDependents(
  tx: Queryable,
  jobId: string,
  names: readonly string[],
  k: number,
  now: number,
  weights: Ctx['weights'],
): Promise<void> {
  for (let i = 0; i < names.length; i += CHUNK) {
    const part = names.slice(i, i + CHUNK);
    await tx.execute(
      `UPDATE job_tasks SET deps_left = deps_left - ?,
         ready_at = CASE WHEN deps_left = ? THEN CAST(? AS BIGINT) ELSE NULL END,
         prio_key = CASE WHEN deps_left = ? THEN class_points - CAST(? AS DOUBLE PRECISION) ELSE NULL END
       WHERE job_id = ? AND state = 'queued' AND name IN (${part.map(() => '?').join(', ')})`,
      [k, k, now, k, (weights.agePerS * now) / 1000, jobId, ...part],
    );
  }
}

/** Skips every task of the job that has not started (fail fast); running ones finish. */
async function skipPending(tx: Queryable, jobId: string, reason: string, now: number): Promise<number> {
  const { rowCount } = await tx.execute(
    `UPDATE job_tasks SET state = 'skipped', ready_at = NULL, prio_key = NULL, reason = ?, finished_at = ?
     WHERE job_id = ? AND state IN ('queued', 'retrying')`,
    [reason, now, jobId],
  );
  return rowCount;
}

/** `n` tasks of the job became terminal; the last one ends the job with the state its tasks give. */
async function closeTasks(
  tx: Queryable,
  jobId: string,
  n: number,
  now: number,
  force?: JobState,
): Promise<Effects> {
  if (n === 0) return {};
  const [j] = await tx.query<{ open_tasks: number }>(
    'UPDATE jobs SET open_tasks = open_tasks - ? WHERE id = ? RETURNING open_tasks',
    [n, jobId],
    SMALL,
  );
  if (!j || Number(j.open_tasks) > 0) return {};
  const tasks = await tx.query<{ state: TaskState; on_failure: 'fail' | 'continue' }>(
    'SELECT state, on_failure FROM job_tasks WHERE job_id = ?',
    [jobId],
  );
  const state = force ?? jobStateOf(tasks.map((t) => ({ state: t.state, onFailure: t.on_failure })));
  await tx.execute(
    `UPDATE jobs SET state = ?, finished_at = ? WHERE id = ? AND state NOT IN ('succeeded', 'failed', 'cancelled')`,
    [state, now, jobId],
  );
  return { jobFinished: { jobId, state } };
}

/**
 * Extends the leases of running attempts; returns those whose lease is gone (the task was
 * cancelled, or another scheduler took it over as lost): their executor must stop.
 */
export async function renewLeases(
  store: Store,
  owner: string,
  claims: readonly Claim[],
  until: number,
): Promise<Claim[]> {
  const lost: Claim[] = [];
  for (const c of claims) {
    const { rowCount } = await store.execute(
      `UPDATE job_tasks SET lease_until = ? WHERE job_id = ? AND name = ? AND attempt = ? AND state = 'running' AND lease_owner = ?`,
      [until, c.jobId, c.task, c.attempt, owner],
    );
    if (rowCount !== 1) lost.push(c);
  }
  return lost;
}

export interface LostAttempt {
  jobId: string;
  task: string;
  attempt: number;
  owner: string;
  pid: number | null;
}

/** Running tasks whose lease ran out, or (at start) that this owner held before it restarted. */
export async function findLost(
  store: Store,
  now: number,
  restartedOwner: string | null,
  limit = 500,
): Promise<LostAttempt[]> {
  const rows = await store.query<{
    job_id: string;
    name: string;
    attempt: number;
    owner: string;
    pid: number | null;
  }>(
    `SELECT t.job_id, t.name, t.attempt, a.owner, a.pid FROM job_tasks t
     JOIN job_attempts a ON a.job_id = t.job_id AND a.task = t.name AND a.attempt = t.attempt
     WHERE t.state = 'running' AND (t.lease_until < ?${restartedOwner === null ? '' : ' OR t.lease_owner = ?'}) LIMIT ?`,
    restartedOwner === null ? [now, limit] : [now, restartedOwner, limit],
  );
  return rows.map((r) => ({ jobId: r.job_id, task: r.name, attempt: r.attempt, owner: r.owner, pid: r.pid }));
}

/** Records the process (group) of an attempt, so a restarted Kapok can stop an orphan. */
export async function recordPid(
  store: Store,
  c: Pick<Claim, 'jobId' | 'task' | 'attempt'>,
  pid: number,
): Promise<void> {
  await store.execute('UPDATE job_attempts SET pid = ? WHERE job_id = ? AND task = ? AND attempt = ?', [
    pid,
    c.jobId,
    c.task,
    c.attempt,
  ]);
}

/** Cancels a job from any state: its unfinished tasks (running ones too) become Cancelled. */
export async function cancelJob(store: Store, jobId: string, now: number): Promise<Effects | null> {
  return store.transaction(async (tx) => {
    const [j] = await tx.query<{ state: JobState }>('SELECT state FROM jobs WHERE id = ?', [jobId]);
    if (!j) return null;
    const { rowCount } = await tx.execute(
      `UPDATE job_tasks SET state = 'cancelled', ready_at = NULL, prio_key = NULL, lease_owner = NULL, lease_until = NULL,
         reason = 'cancelled', finished_at = ? WHERE job_id = ? AND state NOT IN (${TERMINAL_SQL})`,
      [now, jobId],
    );
    await tx.execute(
      `UPDATE job_attempts SET state = 'cancelled', failure = 'cancelled', finished_at = ? WHERE job_id = ? AND state = 'running'`,
      [now, jobId],
    );
    return closeTasks(tx, jobId, rowCount, now, 'cancelled');
  });
}

/** Cancels one task from any unfinished state; what depends on it (transitively) is Skipped. */
export async function cancelTask(
  store: Store,
  jobId: string,
  task: string,
  now: number,
): Promise<Effects | null> {
  return store.transaction(async (tx) => {
    const tasks = await tx.query<{ name: string; state: TaskState; dependents: string }>(
      'SELECT name, state, dependents FROM job_tasks WHERE job_id = ?',
      [jobId],
    );
    const me = tasks.find((t) => t.name === task);
    if (!me) return null;
    const { rowCount } = await tx.execute(
      `UPDATE job_tasks SET state = 'cancelled', ready_at = NULL, prio_key = NULL, lease_owner = NULL, lease_until = NULL,
         reason = 'cancelled', finished_at = ? WHERE job_id = ? AND name = ? AND state NOT IN (${TERMINAL_SQL})`,
      [now, jobId, task],
    );
    if (rowCount === 0) return {};
    await tx.execute(
      `UPDATE job_attempts SET state = 'cancelled', failure = 'cancelled', finished_at = ? WHERE job_id = ? AND task = ? AND state = 'running'`,
      [now, jobId, task],
    );
    const deps = new Map(tasks.map((t) => [t.name, JSON.parse(t.dependents) as string[]]));
    const down = new Set<string>();
    const stack = [...(deps.get(task) ?? [])];
    while (stack.length) {
      const n = stack.pop() as string;
      if (down.has(n)) continue;
      down.add(n);
      stack.push(...(deps.get(n) ?? []));
    }
    let skipped = 0;
    const list = [...down];
    for (let i = 0; i < list.length; i += CHUNK) {
      const part = list.slice(i, i + CHUNK);
      const r = await tx.execute(
        `UPDATE job_tasks SET state = 'skipped', ready_at = NULL, prio_key = NULL, reason = ?, finished_at = ?
         WHERE job_id = ? AND state IN ('queued', 'retrying') AND name IN (${part.map(() => '?').join(', ')})`,
        [`needs ${task}, which was cancelled`, now, jobId, ...part],
      );
      skipped += r.rowCount;
    }
    return closeTasks(tx, jobId, 1 + skipped, now);
  });
}

/**
 * Runs a finished job's unsucceeded tasks again (failed, cancelled, skipped), each with a fresh
 * attempt budget; succeeded tasks keep their result. Returns the tasks requeued, or null if unknown.
 */
export async function retryJob(
  store: Store,
  jobId: string,
  o: Ctx,
): Promise<{ state: JobState; requeued: number } | null> {
  return store.transaction(async (tx) => {
    const [j] = await tx.query<{ state: JobState }>('SELECT state FROM jobs WHERE id = ?', [jobId]);
    if (!j) return null;
    if (j.state === 'queued' || j.state === 'running' || j.state === 'succeeded')
      return { state: j.state, requeued: 0 };
    const tasks = await tx.query<{ name: string; state: TaskState; spec: string }>(
      'SELECT name, state, spec FROM job_tasks WHERE job_id = ?',
      [jobId],
    );
    const done = new Set(tasks.filter((t) => t.state === 'succeeded').map((t) => t.name));
    let requeued = 0;
    for (const t of tasks) {
      if (done.has(t.name)) continue;
      const needs = new Set((JSON.parse(t.spec) as TaskSpec).needs);
      const left = [...needs].filter((n) => !done.has(n)).length;
      await tx.execute(
        `UPDATE job_tasks SET state = 'queued', deps_left = ?, attempt_base = attempt, reason = NULL, finished_at = NULL,
           ready_at = CAST(? AS BIGINT), prio_key = CASE WHEN ? = 0 THEN class_points - CAST(? AS DOUBLE PRECISION) ELSE NULL END
         WHERE job_id = ? AND name = ?`,
        [left, left === 0 ? o.now : null, left, (o.weights.agePerS * o.now) / 1000, jobId, t.name],
      );
      requeued++;
    }
    await tx.execute(
      `UPDATE jobs SET state = 'running', open_tasks = ?, finished_at = NULL, reason = NULL WHERE id = ?`,
      [requeued, jobId],
    );
    return { state: 'running' as JobState, requeued };
  });
}
