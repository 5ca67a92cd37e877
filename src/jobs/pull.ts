import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { KapokError } from '../core/errors.js';
import type { RouteRoles } from '../core/http/admin-auth.js';
import type { Store } from '../ports/store.js';
import type { ScoreWeights } from './core.js';
import { addCheckpoint, checkCheckpoint, latestCheckpoint } from './queries.js';
import {
  type AttemptResult,
  type Claim,
  claimTasks,
  type Effects,
  finishAttempt,
  renewLeases,
} from './transitions.js';

/**
 * The pull-worker API under /api/jobs/workers (docs/jobs.md#pull-workers): `kapok worker` processes
 * on other machines lease tasks that fit the capacity they report, renew the leases with
 * heartbeats (reporting their GPUs again each time), and report checkpoints and results. A worker
 * token (jobs.workerTokens) opens these routes and nothing else; admin tokens do not open them.
 * A worker that stops renewing loses its tasks after jobs.leaseS: the scheduler retries them.
 */

export const WORKER_ROLES: RouteRoles = {
  'POST /workers/lease': 'public',
  'POST /workers/heartbeat': 'public',
  'POST /workers/result': 'public',
  'POST /workers/checkpoint': 'public',
};

/** Executors a pull worker may run (inference runs where the model is: on a Kapok). */
export const PULL_EXECUTORS = ['process', 'http', 'noop'] as const;

const id = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, '1-128 letters, digits, . _ : -');
const gpu = z.strictObject({
  index: z.number().int().min(0).max(1023),
  totalMiB: z.number().int().min(0),
  usedMiB: z.number().int().min(0),
});
const inventory = {
  worker: id,
  gpus: z.array(gpu).max(1024),
  slots: z.number().int().min(0).max(10_000),
  cpu: z.number().min(0).max(100_000),
  memoryMiB: z.number().int().min(0),
};
const attemptRef = z.strictObject({
  jobId: z.uuid(),
  task: z.string().min(1).max(63),
  attempt: z.number().int().min(1),
});

const leaseBody = z.strictObject({
  ...inventory,
  executors: z
    .array(z.enum(PULL_EXECUTORS))
    .min(1)
    .default([...PULL_EXECUTORS]),
  /** Free now: what the worker's running tasks leave. */
  free: z.strictObject({
    gpus: z.array(z.strictObject({ index: z.number().int().min(0), freeMiB: z.number().min(0) })).max(1024),
    cpu: z.number(),
    memoryMiB: z.number().min(0),
    slots: z.number().int().min(0).max(64),
  }),
});
const heartbeatBody = z.strictObject({ ...inventory, running: z.array(attemptRef).max(10_000) });
const resultBody = z.strictObject({
  worker: id,
  ...attemptRef.shape,
  ok: z.boolean(),
  failure: z
    .strictObject({
      class: z.enum(['exit', 'timeout', 'lost', 'spawn', 'signal', 'http_5xx', 'http_error']),
      exitCode: z.number().int().min(0).max(255).optional(),
    })
    .optional(),
  reason: z.string().max(2000).optional(),
  output: z
    .string()
    .max(16 * 1024 * 1024)
    .optional(),
});
const checkpointBody = z.strictObject({ worker: id, ...attemptRef.shape, checkpoint: z.unknown() });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  throw new KapokError(
    'KAPOK_JOBS_WORKER_BAD_REQUEST',
    `worker request: ${i?.path.join('.') || 'body'}: ${i?.message ?? 'invalid'} (kapok worker of another version?)`,
  );
}

export interface PullOptions {
  store: Store;
  tokens: ReadonlyArray<{ name: string; token: string }>;
  weights: ScoreWeights;
  leaseMs: number;
  heartbeatMs: number;
  candidates: number;
  maxOutputBytes: number;
  /** Executors this Kapok accepts (jobs.executors): a worker is given only those of them it runs. */
  executors: readonly string[];
  now?: () => number;
  rand?: () => number;
  onStarted?: (c: Claim, waitMs: number, owner: string) => void;
  onEnded?: (c: Pick<Claim, 'jobId' | 'task' | 'attempt'>, res: AttemptResult) => void;
  onEffects?: (e: Effects) => void;
  /** A worker reported its size (the largest one bounds what a spec may ask). */
  onWorker?: (w: { gpus: number; gpuMemoryMiB: number; cpu: number; memoryMiB: number }) => void;
}

/** The ledger's owner of a pull worker's attempts: which token, which worker. */
const ownerOf = (token: string, worker: string) => `worker:${token}:${worker}`;

export function pullRoutes(app: FastifyInstance, o: PullOptions): void {
  const now = o.now ?? Date.now;
  const rand = o.rand ?? Math.random;
  const digests = o.tokens.map((t) => ({ name: t.name, digest: sha256(t.token) }));
  const tokenName = new WeakMap<object, string>();
  // Every configured token is compared (constant time, digests of equal length): the time taken
  // says nothing about which one matched.
  const guard: onRequestHookHandler = async (req) => {
    if (digests.length === 0)
      throw new KapokError(
        'KAPOK_JOBS_WORKERS_DISABLED',
        'pull workers are off here: list a worker token in jobs.workerTokens ({name, token}) to let kapok worker in',
      );
    const m = /^Bearer[ \t]+(\S+)$/i.exec(req.headers.authorization ?? '');
    let found: string | null = null;
    if (m?.[1]) {
      const d = sha256(m[1]);
      for (const t of digests) if (timingSafeEqual(d, t.digest) && found === null) found = t.name;
    }
    if (found === null)
      throw new KapokError(
        'KAPOK_HTTP_UNAUTHORIZED',
        'the jobs worker API needs Authorization: Bearer <a token of jobs.workerTokens> (kapok worker --token)',
      );
    tokenName.set(req, found);
  };
  const owner = (req: object, worker: string) => ownerOf(tokenName.get(req) as string, worker);
  const seen = (
    w: z.infer<typeof heartbeatBody> | z.infer<typeof leaseBody>,
    own: string,
    running: number,
  ) => {
    o.onWorker?.({
      gpus: w.gpus.length,
      gpuMemoryMiB: Math.max(0, ...w.gpus.map((g) => g.totalMiB)),
      cpu: w.cpu,
      memoryMiB: w.memoryMiB,
    });
    const t = now();
    return o.store.execute(
      o.store.dialect === 'postgres'
        ? `INSERT INTO job_workers (id, token_name, gpus, slots, cpu, memory_mib, running, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET gpus = EXCLUDED.gpus, slots = EXCLUDED.slots, cpu = EXCLUDED.cpu,
             memory_mib = EXCLUDED.memory_mib, running = EXCLUDED.running, seen_at = EXCLUDED.seen_at`
        : `INSERT OR REPLACE INTO job_workers (id, token_name, gpus, slots, cpu, memory_mib, running, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [own, own.split(':')[1] ?? '', JSON.stringify(w.gpus), w.slots, w.cpu, w.memoryMiB, running, t],
    );
  };
  /** The attempt must still be this worker's and running (its lease not lost, not cancelled). */
  const held = async (c: z.infer<typeof attemptRef>, own: string) => {
    const [a] = await o.store.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM job_attempts WHERE job_id = ? AND task = ? AND attempt = ? AND owner = ? AND state = 'running'`,
      [c.jobId, c.task, c.attempt, own],
    );
    if (Number(a?.n ?? 0) !== 1)
      throw new KapokError(
        'KAPOK_JOBS_LEASE_LOST',
        `attempt ${c.attempt} of ${c.jobId}/${c.task} is no longer this worker's (lease ran out, cancelled or settled): drop it`,
      );
  };
  const allowed = (ex: readonly string[]) => ex.filter((e) => o.executors.includes(e));

  app.post('/workers/lease', { onRequest: guard }, async (req) => {
    const b = parse(leaseBody, req.body);
    const own = owner(req, b.worker);
    const t = now();
    await seen(b, own, 0);
    const executors = allowed(b.executors);
    const { claims, effects } =
      b.free.slots > 0 && executors.length > 0
        ? await claimTasks(o.store, {
            owner: own,
            capacity: {
              gpus: b.free.gpus,
              cpu: b.free.cpu,
              memoryMiB: b.free.memoryMiB,
              slots: b.free.slots,
            },
            now: t,
            weights: o.weights,
            rand: rand(),
            leaseMs: o.leaseMs,
            candidates: o.candidates,
            max: b.free.slots,
            executors,
          })
        : { claims: [], effects: [] };
    for (const e of effects) o.onEffects?.(e);
    const tasks = [];
    for (const c of claims) {
      o.onStarted?.(c, Math.max(0, t - c.readyAt), own);
      const ck =
        c.spec.checkpoint || c.attemptInRun > 1 || c.attempt > 1
          ? await latestCheckpoint(o.store, c.jobId, c.task)
          : null;
      tasks.push({
        ...c,
        checkpoint: ck && { ...ck, data: ck.data ? ck.data.toString('base64') : null },
      });
    }
    return { leaseMs: o.leaseMs, heartbeatMs: o.heartbeatMs, maxOutputBytes: o.maxOutputBytes, tasks };
  });

  app.post('/workers/heartbeat', { onRequest: guard }, async (req) => {
    const b = parse(heartbeatBody, req.body);
    const own = owner(req, b.worker);
    await seen(b, own, b.running.length);
    const lost = await renewLeases(o.store, own, b.running as Claim[], now() + o.leaseMs);
    return {
      leaseMs: o.leaseMs,
      heartbeatMs: o.heartbeatMs,
      lost: lost.map((c) => ({ jobId: c.jobId, task: c.task, attempt: c.attempt })),
    };
  });

  app.post('/workers/result', { onRequest: guard, bodyLimit: 20 * 1024 * 1024 }, async (req) => {
    const b = parse(resultBody, req.body);
    const own = owner(req, b.worker);
    await held(b, own);
    const output = b.output === undefined ? undefined : b.output.slice(-o.maxOutputBytes);
    const res: AttemptResult = b.ok
      ? { ok: true, ...(output !== undefined ? { output } : {}) }
      : {
          ok: false,
          failure: b.failure ?? { class: 'exit' },
          reason: b.reason ?? 'failed on the worker',
          ...(output !== undefined ? { output } : {}),
        };
    o.onEnded?.(b, res);
    const e = await finishAttempt(
      o.store,
      { jobId: b.jobId, task: b.task, attempt: b.attempt, owner: own },
      res,
      { weights: o.weights, now: now(), rand: rand() },
    );
    o.onEffects?.(e);
    return { recorded: true };
  });

  app.post('/workers/checkpoint', { onRequest: guard, bodyLimit: 2 * 1024 * 1024 }, async (req, reply) => {
    const b = parse(checkpointBody, req.body);
    const own = owner(req, b.worker);
    await held(b, own);
    const seq = await addCheckpoint(
      o.store,
      b.jobId,
      b.task,
      b.attempt,
      checkCheckpoint(b.checkpoint),
      now(),
    );
    reply.code(201);
    return { seq };
  });
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();
