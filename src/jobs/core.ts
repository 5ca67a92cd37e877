/**
 * The scheduler's pure core (docs/jobs.md#scheduling): no I/O, no clock, no randomness of its own,
 * so the Store-backed scheduler here and the Kubernetes operator (issue 23) decide alike, and tests
 * drive it with a fake clock. Times are milliseconds since the epoch; durations in the spec are seconds.
 */

export const TASK_STATES = [
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
  'skipped',
] as const;
export type TaskState = (typeof TASK_STATES)[number];
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'cancelled', 'skipped']);

/**
 * Allowed task transitions. Cancel is allowed from every non-terminal state (Hatchet#2573: nothing
 * stays RUNNING and uncancellable); a terminal task only leaves its state by an explicit retry.
 */
export const TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  queued: ['running', 'cancelled', 'skipped', 'failed'],
  running: ['succeeded', 'failed', 'retrying', 'cancelled'],
  retrying: ['running', 'cancelled', 'skipped', 'failed'],
  succeeded: [],
  failed: ['queued'],
  cancelled: ['queued'],
  skipped: ['queued'],
};

export function canTransition(from: TaskState, to: TaskState): boolean {
  return TRANSITIONS[from].includes(to);
}

// ---------------------------------------------------------------------------------------------
// DAG readiness

export interface DagTask {
  name: string;
  needs: readonly string[];
  state: TaskState;
  onFailure: 'fail' | 'continue';
}

/**
 * Whether a finished dependency lets its dependents run: succeeded, or failed with
 * `onFailure: continue`. A cancelled or skipped one (or a failed one without continue) skips them.
 */
export function satisfies(t: Pick<DagTask, 'state' | 'onFailure'>): boolean {
  return t.state === 'succeeded' || (t.state === 'failed' && t.onFailure === 'continue');
}

/** Names of the queued tasks whose every dependency is satisfied, in spec order. */
export function readyTasks(tasks: readonly DagTask[]): string[] {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  return tasks
    .filter(
      (t) =>
        t.state === 'queued' &&
        t.needs.every((n) => {
          const d = byName.get(n);
          return d !== undefined && satisfies(d);
        }),
    )
    .map((t) => t.name);
}

/** Every task downstream of `name` (transitively), for skipping them. */
export function downstream(tasks: readonly Pick<DagTask, 'name' | 'needs'>[], name: string): string[] {
  const dependents = new Map<string, string[]>();
  for (const t of tasks) for (const n of t.needs) dependents.set(n, [...(dependents.get(n) ?? []), t.name]);
  const seen = new Set<string>();
  const stack = [...(dependents.get(name) ?? [])];
  while (stack.length) {
    const n = stack.pop() as string;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(dependents.get(n) ?? []));
  }
  return [...seen];
}

/** The job's state from its tasks' states (once all are terminal; else running or queued). */
export function jobStateOf(
  states: readonly { state: TaskState; onFailure: 'fail' | 'continue' }[],
): JobState {
  if (states.some((s) => !TERMINAL.has(s.state)))
    return states.some((s) => s.state !== 'queued') ? 'running' : 'queued';
  if (states.some((s) => s.state === 'failed' && s.onFailure === 'fail')) return 'failed';
  if (states.some((s) => s.state === 'cancelled')) return 'cancelled';
  if (states.some((s) => s.state === 'skipped')) return 'failed';
  return 'succeeded';
}

// ---------------------------------------------------------------------------------------------
// Retries

export interface Backoff {
  baseS: number;
  factor: number;
  maxS: number;
  jitter: number;
}

/**
 * The wait before retry n (n = 1 is the first retry): min(base·factor^(n−1), max), then ± jitter
 * as a fraction of it, and capped at max again (Argo#13772: never above max; Argo#3513: the first
 * retry waits base, not base·factor). `rand` in [0, 1).
 */
export function backoffDelayS(n: number, b: Backoff, rand: number): number {
  const d = Math.min(b.baseS * b.factor ** Math.max(0, n - 1), b.maxS);
  const j = d * b.jitter * (2 * rand - 1);
  return Math.max(0, Math.min(b.maxS, d + j));
}

export type FailureClass = 'exit' | 'timeout' | 'lost' | 'spawn' | 'signal' | 'http_5xx' | 'http_error';

export interface Failure {
  class: FailureClass;
  /** Exit code for class exit. */
  exitCode?: number;
}

export interface RetryPolicy {
  maxAttempts: number;
  backoff: Backoff;
  retryOn?: readonly (number | string)[] | undefined;
}

export type RetryDecision =
  | { retry: true; at: number; delayS: number }
  | { retry: false; reason: 'attempts' | 'not_retryable' | 'deadline' };

/** Whether a failure is one the policy retries (no retryOn: every failure). */
export function retryable(f: Failure, retryOn: RetryPolicy['retryOn']): boolean {
  if (!retryOn) return true;
  if (f.class === 'exit') return f.exitCode !== undefined && retryOn.includes(f.exitCode);
  return retryOn.includes(f.class);
}

/**
 * After attempt `attempt` (1-based, counted in this run of the task) failed at `now`: retry when
 * attempts remain, the failure is retryable and the next attempt can finish before the deadline
 * (given the expected run time). No wait is computed after the last attempt (Argo#7588).
 */
export function decideRetry(
  p: RetryPolicy,
  attempt: number,
  f: Failure,
  now: number,
  rand: number,
  deadline: number | null,
  expectedS: number | null,
): RetryDecision {
  if (attempt >= p.maxAttempts) return { retry: false, reason: 'attempts' };
  if (!retryable(f, p.retryOn)) return { retry: false, reason: 'not_retryable' };
  const delayS = backoffDelayS(attempt, p.backoff, rand);
  const at = now + Math.round(delayS * 1000);
  if (deadline !== null && at + (expectedS ?? 0) * 1000 > deadline)
    return { retry: false, reason: 'deadline' };
  return { retry: true, at, delayS };
}

/** Whether a first attempt may start at `now` (it must be able to finish before the deadline). */
export function fitsDeadline(now: number, deadline: number | null, expectedS: number | null): boolean {
  return deadline === null || now + (expectedS ?? 0) * 1000 <= deadline;
}

// ---------------------------------------------------------------------------------------------
// Priority

export interface ScoreWeights {
  /** Points per priority class. */
  classes: Readonly<Record<string, number>>;
  /** Points per second a task has waited since it became ready (ageing: bounds every wait). */
  agePerS: number;
  /** Points at most for deadline urgency (slack ÷ expected run time near 0). */
  urgency: number;
}

export const DEFAULT_WEIGHTS: ScoreWeights = {
  classes: { low: 0, normal: 100, high: 200, critical: 300 },
  agePerS: 1,
  urgency: 100,
};

export interface Candidate {
  /** Unique key (job id + task name). */
  key: string;
  priority: string;
  /** When it became ready (deps done, or its retry wait ended). */
  readyAt: number;
  deadline: number | null;
  expectedS: number | null;
  gpus: number;
  gpuMemoryMiB: number;
  cpu: number;
  memoryMiB: number;
}

/**
 * Urgency in [0, 1]: 1 / (1 + slack ÷ expected), slack = deadline − now − expected (clamped at 0);
 * 0 without a deadline. With no expected run time known, 1 s stands in for it.
 */
export function urgency(c: Pick<Candidate, 'deadline' | 'expectedS'>, now: number): number {
  if (c.deadline === null) return 0;
  const expected = c.expectedS ?? 1;
  const slack = Math.max(0, (c.deadline - now) / 1000 - expected);
  return 1 / (1 + slack / expected);
}

/** score = class points + agePerS · seconds waited + urgency points · urgency. Higher runs first. */
export function score(c: Candidate, now: number, w: ScoreWeights = DEFAULT_WEIGHTS): number {
  const waited = Math.max(0, (now - c.readyAt) / 1000);
  return (w.classes[c.priority] ?? 0) + w.agePerS * waited + w.urgency * urgency(c, now);
}

/**
 * The order of candidates: score, then earliest deadline first (EDF; none last), then the longest
 * waiting, then the key (a total order: two schedulers rank alike).
 */
export function compareCandidates(
  a: Candidate,
  b: Candidate,
  now: number,
  w: ScoreWeights = DEFAULT_WEIGHTS,
): number {
  const d = score(b, now, w) - score(a, now, w);
  if (Math.abs(d) > 1e-9) return d;
  const da = a.deadline ?? Number.POSITIVE_INFINITY;
  const db = b.deadline ?? Number.POSITIVE_INFINITY;
  if (da !== db) return da < db ? -1 : 1;
  if (a.readyAt !== b.readyAt) return a.readyAt - b.readyAt;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * The longest a ready task of class `cls` can be overtaken for, in seconds, while capacity frees:
 * once its score passes the best a newcomer can have (top class + full urgency), it is first.
 */
export function maxWaitS(cls: string, w: ScoreWeights = DEFAULT_WEIGHTS): number {
  const top = Math.max(...Object.values(w.classes));
  return (top + w.urgency - (w.classes[cls] ?? 0)) / w.agePerS;
}

// ---------------------------------------------------------------------------------------------
// Fit

export interface Gpu {
  index: number;
  /** Free memory now (total − used, or total when unknown). */
  freeMiB: number;
}

export interface Capacity {
  /** GPUs not given to a running task. */
  gpus: readonly Gpu[];
  cpu: number;
  memoryMiB: number;
  /** Tasks that may still start (slots). */
  slots: number;
}

/**
 * The GPUs a task would get on this capacity: `gpus` of them, each with at least gpuMemoryMiB free,
 * best fit first (the least free memory that suffices, keeping big GPUs for big tasks); null when it
 * does not fit. memoryMiB 0 on the capacity means not accounted.
 */
export function fit(
  c: Pick<Candidate, 'gpus' | 'gpuMemoryMiB' | 'cpu' | 'memoryMiB'>,
  cap: Capacity,
): number[] | null {
  if (cap.slots < 1 || c.cpu > cap.cpu + 1e-9) return null;
  if (c.memoryMiB > 0 && cap.memoryMiB > 0 && c.memoryMiB > cap.memoryMiB) return null;
  if (c.gpus === 0) return [];
  const usable = cap.gpus
    .filter((g) => g.freeMiB >= c.gpuMemoryMiB)
    .sort((a, b) => a.freeMiB - b.freeMiB || a.index - b.index);
  if (usable.length < c.gpus) return null;
  return usable.slice(0, c.gpus).map((g) => g.index);
}

/** Takes what a started task holds out of the capacity. */
export function allocate(
  cap: Capacity,
  c: Pick<Candidate, 'cpu' | 'memoryMiB'>,
  gpus: readonly number[],
): Capacity {
  return {
    gpus: cap.gpus.filter((g) => !gpus.includes(g.index)),
    cpu: cap.cpu - c.cpu,
    memoryMiB: cap.memoryMiB > 0 ? cap.memoryMiB - c.memoryMiB : 0,
    slots: cap.slots - 1,
  };
}

/**
 * Picks what to start now: among the candidates that fit, in compareCandidates order, greedily
 * while capacity lasts. Returns the picks with the GPUs each gets.
 */
export function pickNext(
  candidates: readonly Candidate[],
  capacity: Capacity,
  now: number,
  w: ScoreWeights = DEFAULT_WEIGHTS,
  max = Number.POSITIVE_INFINITY,
): Array<{ candidate: Candidate; gpus: number[] }> {
  const sorted = [...candidates].sort((a, b) => compareCandidates(a, b, now, w));
  const out: Array<{ candidate: Candidate; gpus: number[] }> = [];
  let cap = capacity;
  for (const c of sorted) {
    if (out.length >= max || cap.slots < 1) break;
    const g = fit(c, cap);
    if (!g) continue;
    out.push({ candidate: c, gpus: g });
    cap = allocate(cap, c, g);
  }
  return out;
}
