import type { FastifyInstance } from 'fastify';
import { KapokError } from '../core/errors.js';
import type { AdminGuard, RouteRoles } from '../core/http/admin-auth.js';
import type { JobState } from './core.js';
import { type PullOptions, pullRoutes, WORKER_ROLES } from './pull.js';
import type { JobsService } from './service.js';

/** /api/jobs (docs/api.md#jobs): submit, read, cancel, retry, checkpoints. */
export const JOBS_ADMIN_ROLES: RouteRoles = {
  'POST /': 'operator',
  'GET /': 'viewer',
  'GET /:id': 'viewer',
  'POST /:id/cancel': 'operator',
  'POST /:id/retry': 'operator',
  'POST /:id/tasks/:task/cancel': 'operator',
  'POST /:id/tasks/:task/checkpoints': 'operator',
  'GET /:id/tasks/:task/checkpoint': 'viewer',
};

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'];

function jobId(params: unknown): string {
  const id = (params as { id?: string }).id ?? '';
  if (!ID.test(id))
    throw new KapokError(
      'KAPOK_JOBS_NOT_FOUND',
      `no job ${JSON.stringify(id.slice(0, 64))}: job ids are UUIDs as POST /api/jobs returned`,
    );
  return id;
}

export async function jobsRoutes(
  app: FastifyInstance,
  d: { service: JobsService; admin: AdminGuard; maxLimit: number; pull: PullOptions },
): Promise<void> {
  // The worker routes are public to the admin guard: their own guard takes worker tokens only.
  d.admin.hook(app, { ...JOBS_ADMIN_ROLES, ...WORKER_ROLES });
  pullRoutes(app, d.pull);
  // A YAML spec is taken as text and parsed by the spec parser (alias expansion bounded there).
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  const s = d.service;

  app.post('/', async (req, reply) => {
    const job = await s.submit(req.body);
    reply.code(201);
    return job;
  });

  app.get('/', async (req) => {
    const q = req.query as Record<string, unknown>;
    for (const k of Object.keys(q))
      if (!['state', 'limit', 'before'].includes(k))
        throw new KapokError(
          'KAPOK_JOBS_BAD_QUERY',
          `unknown parameter ${k.slice(0, 40)}: use state, limit, before`,
        );
    if (q.state !== undefined && !JOB_STATES.includes(q.state as JobState))
      throw new KapokError('KAPOK_JOBS_BAD_QUERY', `state: expected one of ${JOB_STATES.join(', ')}`);
    let limit = 50;
    if (q.limit !== undefined) {
      if (
        typeof q.limit !== 'string' ||
        !/^\d{1,6}$/.test(q.limit) ||
        Number(q.limit) < 1 ||
        Number(q.limit) > d.maxLimit
      )
        throw new KapokError(
          'KAPOK_JOBS_BAD_QUERY',
          `limit: expected a whole number from 1 to jobs.queryMaxLimit (${d.maxLimit})`,
        );
      limit = Number(q.limit);
    }
    let before: number | undefined;
    if (q.before !== undefined) {
      before = typeof q.before === 'string' ? Date.parse(q.before) : Number.NaN;
      if (!Number.isFinite(before))
        throw new KapokError(
          'KAPOK_JOBS_BAD_QUERY',
          'before: expected an ISO-8601 time (a createdAt from the last page)',
        );
    }
    const jobs = await s.list({
      ...(q.state ? { state: q.state as JobState } : {}),
      ...(before !== undefined ? { before } : {}),
      limit,
    });
    return { jobs, next: jobs.length === limit ? (jobs.at(-1)?.createdAt ?? null) : null };
  });

  app.get('/:id', async (req) => {
    const outputs = (req.query as { outputs?: string }).outputs === '1';
    return s.get(jobId(req.params), outputs);
  });

  app.post('/:id/cancel', async (req) => s.cancel(jobId(req.params)));
  app.post('/:id/retry', async (req) => s.retry(jobId(req.params)));
  app.post('/:id/tasks/:task/cancel', async (req) =>
    s.cancel(jobId(req.params), (req.params as { task: string }).task),
  );
  app.post('/:id/tasks/:task/checkpoints', async (req, reply) => {
    const seq = await s.reportCheckpoint(jobId(req.params), (req.params as { task: string }).task, req.body);
    reply.code(201);
    return { seq };
  });
  app.get('/:id/tasks/:task/checkpoint', async (req) => {
    const c = await s.checkpoint(jobId(req.params), (req.params as { task: string }).task);
    return { ...c, data: c.data ? c.data.toString('base64') : null };
  });
}
