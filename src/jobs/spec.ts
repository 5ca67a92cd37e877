import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { KapokError } from '../core/errors.js';

/**
 * The job spec (docs/jobs.md#spec): a DAG of tasks, parsed from YAML or JSON and checked before
 * anything is stored. Every refusal is KAPOK_JOBS_INVALID_SPEC naming the task path
 * (`tasks[2] (train).retry.backoff.factor`), all problems at once (at most 20 listed).
 */

export const PRIORITY_CLASSES = ['low', 'normal', 'high', 'critical'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export const MAX_TASKS = 1000;
export const MAX_DEPTH = 64;
export const MAX_ATTEMPTS = 100;
/** Largest spec text accepted (YAML or JSON). */
export const MAX_SPEC_BYTES = 1024 * 1024;

const name = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
    'expected 1-63 letters, digits, _ . - (starting with a letter or digit)',
  );

/** Error classes a retry can be limited to (besides exit codes). */
export const ERROR_CLASSES = ['timeout', 'lost', 'spawn', 'signal', 'http_5xx', 'http_error'] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

const processRun = z.strictObject({
  executor: z.literal('process'),
  /** argv: no shell; `["sh", "-c", "..."]` when a shell is wanted. */
  command: z.array(z.string().min(1).max(4096)).min(1).max(256),
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
      z.string().max(65_536),
    )
    .optional(),
  cwd: z.string().min(1).max(4096).optional(),
});
const httpRun = z.strictObject({
  executor: z.literal('http'),
  url: z.url({ protocol: /^https?$/ }),
  method: z.enum(['GET', 'POST', 'PUT']).default('POST'),
  headers: z.record(z.string(), z.string().max(8192)).optional(),
  body: z.unknown().optional(),
});
/**
 * Batch inference on a model of the inference capability (ports/inference.ts): one OIP request
 * inline, or a JSON-lines file of them on the Kapok host; answers to the output or to outputFile.
 */
const inferenceRun = z.strictObject({
  executor: z.literal('inference'),
  model: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'a model name of the repository'),
  /** A version number; absent: the newest ready one. */
  version: z
    .string()
    .regex(/^[1-9]\d{0,8}$/, 'a version number')
    .optional(),
  /** One request as POST /v2/models/{model}/infer takes it: {inputs, outputs?, id?, parameters?}. */
  request: z.record(z.string(), z.unknown()).optional(),
  /** A file of requests, one JSON object per line (the batch). */
  inputFile: z.string().min(1).max(4096).optional(),
  /** Where the answers go, one JSON line per request (written whole: a partial file is never left there). */
  outputFile: z.string().min(1).max(4096).optional(),
});
/** Completes at once: for trying a DAG's shape and measuring the scheduler's own cost. */
const noopRun = z.strictObject({ executor: z.literal('noop') });

const backoff = z.strictObject({
  baseS: z.number().min(0).max(86_400).default(10),
  factor: z.number().default(2),
  maxS: z.number().min(0).max(86_400).default(600),
  /** ± this fraction of the delay, drawn at random (0..1). */
  jitter: z.number().min(0).max(1).default(0.1),
});

const retry = z.strictObject({
  maxAttempts: z.number().int().min(1).default(1),
  backoff: backoff.prefault({}),
  /** Retry only on these exit codes or error classes; absent: on any failure. */
  retryOn: z
    .array(z.union([z.number().int().min(0).max(255), z.enum(ERROR_CLASSES)]))
    .max(64)
    .optional(),
});

const resources = z.strictObject({
  gpus: z.number().default(0),
  /** Free memory needed on each GPU given. */
  gpuMemoryMiB: z.number().int().min(0).default(0),
  cpu: z.number().positive().max(1024).default(1),
  memoryMiB: z.number().int().min(0).default(0),
});

const task = z.strictObject({
  name,
  needs: z.array(z.string()).max(MAX_TASKS).default([]),
  run: z.discriminatedUnion('executor', [processRun, httpRun, noopRun, inferenceRun]),
  resources: resources.prefault({}),
  timeoutS: z
    .number()
    .positive()
    .max(30 * 86_400)
    .optional(),
  /** Expected run time: the scheduler's score and the deadline check use it (default: none known). */
  expectedS: z
    .number()
    .positive()
    .max(30 * 86_400)
    .optional(),
  retry: retry.prefault({}),
  onFailure: z.enum(['fail', 'continue']).default('fail'),
  checkpoint: z.strictObject({ everyS: z.number().positive().max(86_400) }).optional(),
});

const job = z.strictObject({
  name,
  /** ISO-8601 time, or null: no deadline. */
  deadline: z.iso.datetime({ offset: true }).nullable().default(null),
  priority: z.enum(PRIORITY_CLASSES).default('normal'),
  tasks: z.array(task).min(1),
});

export type TaskSpec = z.infer<typeof task>;
export type JobSpec = z.infer<typeof job>;
export type RunSpec = TaskSpec['run'];

/** The largest worker a task must fit (resources of the biggest one known). */
export interface WorkerLimits {
  gpus: number;
  gpuMemoryMiB: number;
  cpu: number;
  memoryMiB: number;
}

function pathOf(p: readonly PropertyKey[], tasks: readonly unknown[] | undefined): string {
  let out = '';
  for (const [i, k] of p.entries()) {
    if (typeof k === 'number') {
      out += `[${k}]`;
      if (p[i - 1] === 'tasks' && i === 1) {
        const n = (tasks?.[k] as { name?: unknown } | undefined)?.name;
        if (typeof n === 'string') out += ` (${n.slice(0, 63)})`;
      }
    } else out += out ? `.${String(k)}` : String(k);
  }
  return out || '(spec)';
}

function invalid(problems: string[]): KapokError {
  const shown = problems.slice(0, 20);
  const more = problems.length > shown.length ? ` (and ${problems.length - shown.length} more)` : '';
  return new KapokError('KAPOK_JOBS_INVALID_SPEC', `job spec: ${shown.join('; ')}${more}`, {
    details: { problems: shown },
  });
}

/** Parses YAML or JSON text (JSON is YAML), refusing what is too large or not a mapping. */
export function parseSpecText(text: string): unknown {
  if (Buffer.byteLength(text) > MAX_SPEC_BYTES)
    throw invalid([`the spec is over ${MAX_SPEC_BYTES} bytes: split the work into several jobs`]);
  let v: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    v = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (err) {
    throw invalid([`not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalid(['expected a mapping with name, tasks (and deadline, priority)']);
  return v;
}

/**
 * Checks a parsed spec: shape and fields (unknown ones refused), then the DAG and the limits.
 * `now` and `limits` make the deadline and the fit checks testable.
 */
export function validateSpec(input: unknown, limits: WorkerLimits, now = Date.now()): JobSpec {
  const raw = (input as { tasks?: unknown })?.tasks;
  const rawTasks = Array.isArray(raw) ? raw : undefined;
  if (rawTasks && rawTasks.length > MAX_TASKS)
    throw invalid([`tasks: ${rawTasks.length} tasks, over ${MAX_TASKS}: split the work into several jobs`]);
  const parsed = job.safeParse(input);
  if (!parsed.success)
    throw invalid(parsed.error.issues.map((i) => `${pathOf(i.path, rawTasks)}: ${issueText(i)}`));
  const spec = parsed.data;
  const problems: string[] = [];
  const at = (i: number, rest: string) => `tasks[${i}] (${spec.tasks[i]?.name}).${rest}`;
  if (spec.deadline !== null && Date.parse(spec.deadline) <= now)
    problems.push(`deadline: ${spec.deadline} is in the past: give a later time or null`);
  const index = new Map<string, number>();
  for (const [i, t] of spec.tasks.entries()) {
    if (index.has(t.name))
      problems.push(
        `tasks[${i}].name: ${t.name} is also tasks[${index.get(t.name)}]: task names must be unique`,
      );
    else index.set(t.name, i);
    const b = t.retry.backoff;
    if (!(b.factor >= 1 && b.factor <= 10))
      problems.push(at(i, `retry.backoff.factor: ${b.factor} is outside 1..10`));
    if (b.maxS < b.baseS) problems.push(at(i, `retry.backoff.maxS: ${b.maxS} is below baseS ${b.baseS}`));
    if (t.retry.maxAttempts > MAX_ATTEMPTS)
      problems.push(at(i, `retry.maxAttempts: ${t.retry.maxAttempts} is over ${MAX_ATTEMPTS}`));
    const r = t.resources;
    if (!Number.isInteger(r.gpus) || r.gpus < 0)
      problems.push(
        at(i, `resources.gpus: ${r.gpus}: GPUs are whole, non-negative numbers (no fractional GPUs)`),
      );
    if (r.gpuMemoryMiB > 0 && r.gpus === 0)
      problems.push(
        at(i, 'resources.gpuMemoryMiB: set gpus too (gpuMemoryMiB is the memory needed on each GPU)'),
      );
    const over: string[] = [];
    if (r.gpus > limits.gpus) over.push(`gpus ${r.gpus} > ${limits.gpus}`);
    if (r.gpuMemoryMiB > limits.gpuMemoryMiB)
      over.push(`gpuMemoryMiB ${r.gpuMemoryMiB} > ${limits.gpuMemoryMiB}`);
    if (r.cpu > limits.cpu) over.push(`cpu ${r.cpu} > ${limits.cpu}`);
    if (limits.memoryMiB > 0 && r.memoryMiB > limits.memoryMiB)
      over.push(`memoryMiB ${r.memoryMiB} > ${limits.memoryMiB}`);
    if (over.length)
      problems.push(
        at(i, `resources: larger than the largest worker (${over.join(', ')}): no worker could run it`),
      );
    if (t.run.executor === 'inference' && (t.run.request === undefined) === (t.run.inputFile === undefined))
      problems.push(at(i, 'run: give request (one inline) or inputFile (JSON lines), one of them'));
    for (const [k, n] of t.needs.entries()) {
      if (n === t.name) problems.push(at(i, `needs[${k}]: a task cannot need itself`));
    }
  }
  for (const [i, t] of spec.tasks.entries())
    for (const [k, n] of t.needs.entries())
      if (!index.has(n)) problems.push(at(i, `needs[${k}]: unknown task ${JSON.stringify(n.slice(0, 63))}`));
  if (problems.length === 0) {
    const cycle = findCycle(spec.tasks);
    if (cycle) {
      const first = index.get(cycle[0] as string) ?? 0;
      problems.push(at(first, `needs: cycle ${cycle.join(' → ')}`));
    } else {
      const { depth, deepest } = dagDepth(spec.tasks);
      if (depth > MAX_DEPTH)
        problems.push(
          at(
            index.get(deepest) ?? 0,
            `needs: dependency chain of ${depth} tasks ends here, over ${MAX_DEPTH}`,
          ),
        );
    }
  }
  if (problems.length) throw invalid(problems);
  return spec;
}

function issueText(i: z.core.$ZodIssue): string {
  if (i.code === 'unrecognized_keys')
    return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}`;
  if (i.code === 'invalid_union' && i.path.at(-1) === 'run')
    return 'run.executor must be process (with command), http (with url), inference (with model) or noop';
  return i.message;
}

/** A cycle as task names, first repeated at the end (a → b → a), or null. Iterative: no deep recursion. */
export function findCycle(tasks: readonly { name: string; needs: readonly string[] }[]): string[] | null {
  const needs = new Map(tasks.map((t) => [t.name, t.needs]));
  const color = new Map<string, 1 | 2>();
  for (const start of needs.keys()) {
    if (color.has(start)) continue;
    const stack: Array<{ n: string; i: number }> = [{ n: start, i: 0 }];
    color.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1] as { n: string; i: number };
      const deps = needs.get(top.n) ?? [];
      if (top.i >= deps.length) {
        color.set(top.n, 2);
        stack.pop();
        continue;
      }
      const d = deps[top.i++] as string;
      const c = color.get(d);
      if (c === 1) {
        const from = stack.findIndex((s) => s.n === d);
        return [...stack.slice(from).map((s) => s.n), d];
      }
      if (c === undefined && needs.has(d)) {
        color.set(d, 1);
        stack.push({ n: d, i: 0 });
      }
    }
  }
  return null;
}

/** The longest chain (in tasks) of an acyclic DAG, and the task it ends at. */
export function dagDepth(tasks: readonly { name: string; needs: readonly string[] }[]): {
  depth: number;
  deepest: string;
} {
  const needs = new Map(tasks.map((t) => [t.name, t.needs]));
  const depth = new Map<string, number>();
  // Kahn's order: a task's depth is known once all it needs are.
  const waiting = new Map(tasks.map((t) => [t.name, t.needs.length]));
  const dependents = new Map<string, string[]>();
  for (const t of tasks) for (const n of t.needs) dependents.set(n, [...(dependents.get(n) ?? []), t.name]);
  const queue = tasks.filter((t) => t.needs.length === 0).map((t) => t.name);
  let best = { depth: 0, deepest: tasks[0]?.name ?? '' };
  while (queue.length) {
    const n = queue.shift() as string;
    const d = 1 + Math.max(0, ...(needs.get(n) ?? []).map((x) => depth.get(x) ?? 0));
    depth.set(n, d);
    if (d > best.depth) best = { depth: d, deepest: n };
    for (const m of dependents.get(n) ?? []) {
      const left = (waiting.get(m) ?? 1) - 1;
      waiting.set(m, left);
      if (left === 0) queue.push(m);
    }
  }
  return best;
}

/** Text (YAML/JSON) to a checked spec. */
export function parseSpec(text: string, limits: WorkerLimits, now = Date.now()): JobSpec {
  return validateSpec(parseSpecText(text), limits, now);
}
