import type { FastifyInstance } from 'fastify';
import { KapokError } from '../core/errors.js';
import type { AdminGuard, RouteRoles } from '../core/http/admin-auth.js';
import type { Store } from '../ports/store.js';
import {
  compensateTransaction,
  listDeadLetters,
  listTransactions,
  retryTransaction,
  showTransaction,
  skipOperation,
} from './admin.js';
import type { SagaConfig } from './config.js';
import type { Coordinator } from './engine.js';
import { txView } from './rows.js';
import { planTransaction } from './spec.js';
import { passHeaderNames } from './transport.js';

/** /api/saga (docs/api.md#saga): submit and read transactions (operator / viewer), act on dead ones. */
export const SAGA_ADMIN_ROLES: RouteRoles = {
  'POST /transactions': 'operator',
  'GET /transactions': 'viewer',
  'GET /transactions/:gid': 'viewer',
  'POST /transactions/:gid/submit': 'operator',
  'POST /transactions/:gid/retry': 'operator',
  'POST /transactions/:gid/skip': 'operator',
  'POST /transactions/:gid/compensate': 'operator',
  'GET /dead-letters': 'viewer',
};

export interface SagaRouteDeps {
  store: Store;
  admin: AdminGuard;
  config: SagaConfig;
  coordinator: Coordinator;
}

const bad = (msg: string) => new KapokError('KAPOK_SAGA_INVALID', msg);

function gidOf(p: unknown): string {
  const gid = (p as { gid?: string }).gid ?? '';
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(gid)) throw bad('gid: letters, digits, _ . : - (1-128)');
  return gid;
}

function limitOf(v: unknown, max = 1000): number {
  if (v === undefined) return 100;
  if (typeof v !== 'string' || !/^\d{1,6}$/.test(v) || Number(v) < 1 || Number(v) > max)
    throw bad(`limit: expected a whole number from 1 to ${max}`);
  return Number(v);
}

function only(raw: unknown, known: string[]): Record<string, unknown> {
  const q = (raw ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(q))
    if (!known.includes(k)) throw bad(`unknown parameter ${k}: use ${known.join(', ')}`);
  return q;
}

export async function sagaRoutes(app: FastifyInstance, d: SagaRouteDeps): Promise<void> {
  d.admin.hook(app, SAGA_ADMIN_ROLES);
  const passNames = [...new Set(d.config.targets.flatMap(passHeaderNames))];

  app.post('/transactions', { bodyLimit: d.config.maxBodyBytes }, async (req, reply) => {
    const plan = planTransaction(req.body, d.config);
    const pass: Record<string, string> = {};
    for (const name of passNames) {
      const v = req.headers[name];
      if (v === undefined) continue;
      if (typeof v !== 'string' || v.length > 1024)
        throw bad(`header ${name}: give it once, at most 1024 characters`);
      pass[name] = v;
    }
    const { created, tx } = await d.coordinator.submit(plan, pass);
    reply.code(created ? 201 : 200);
    return { created, transaction: txView(tx) };
  });

  app.get('/transactions', async (req) => {
    const q = only(req.query, ['state', 'limit', 'cursor']);
    if (q.state !== undefined && typeof q.state !== 'string') throw bad('state: give it once');
    if (
      q.cursor !== undefined &&
      (typeof q.cursor !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(q.cursor))
    )
      throw bad('cursor: not a cursor this API returned (pass `next` unchanged)');
    return listTransactions(d.store, {
      ...(q.state ? { state: q.state as string } : {}),
      limit: limitOf(q.limit),
      ...(q.cursor ? { after: q.cursor as string } : {}),
    });
  });

  app.get('/transactions/:gid', async (req) => showTransaction(d.store, gidOf(req.params)));

  app.post('/transactions/:gid/submit', async (req) => ({
    transaction: txView(await d.coordinator.submitPrepared(gidOf(req.params))),
  }));

  const opArgs = (body: unknown, required: boolean): { branch?: string; op?: string } => {
    const b = body ?? {};
    if (typeof b !== 'object' || Array.isArray(b)) throw bad('body: expected a JSON object {branch, op}');
    const { branch, op, ...rest } = b as Record<string, unknown>;
    if (Object.keys(rest).length) throw bad(`unknown field ${Object.keys(rest)[0]}: use branch and op`);
    for (const [k, v] of [
      ['branch', branch],
      ['op', op],
    ] as const)
      if (v !== undefined && (typeof v !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(v)))
        throw bad(`${k}: expected an id`);
    if (required && (!branch || !op))
      throw bad('branch and op: say which dead operation was handled by hand');
    return { ...(branch ? { branch: branch as string } : {}), ...(op ? { op: op as string } : {}) };
  };

  app.post('/transactions/:gid/retry', async (req) => {
    const a = opArgs(req.body, false);
    return retryTransaction(d.store, gidOf(req.params), a.branch, a.op);
  });

  app.post('/transactions/:gid/skip', async (req) => {
    const a = opArgs(req.body, true);
    return skipOperation(d.store, gidOf(req.params), a.branch as string, a.op as string);
  });

  app.post('/transactions/:gid/compensate', async (req) => compensateTransaction(d.store, gidOf(req.params)));

  app.get('/dead-letters', async (req) => {
    const q = only(req.query, ['open', 'limit']);
    if (q.open !== undefined && q.open !== 'true' && q.open !== 'false')
      throw bad('open: expected true or false');
    return { deadLetters: await listDeadLetters(d.store, q.open !== 'false', limitOf(q.limit)) };
  });
}
