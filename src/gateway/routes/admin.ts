import type { FastifyInstance } from 'fastify';
import { KapokError } from '../../core/errors.js';
import type { AdminGuard, RouteRoles } from '../../core/http/admin-auth.js';
import type { Store } from '../../ports/store.js';
import type { KeyService } from '../auth/keys.js';
import { queryUsage } from '../usage/query.js';
import type { UsageRecorder } from '../usage/recorder.js';
import { usageRecords, usageSeries } from '../usage/series.js';

export interface AdminDeps {
  guard: AdminGuard;
  keys: KeyService;
  store: Store;
  usage: UsageRecorder;
}

/** The role each route needs (docs/configuration.md#admin-access): reads are viewer's, keys admin's. */
export const GATEWAY_ADMIN_ROLES: RouteRoles = {
  'GET /keys': 'viewer',
  'GET /usage': 'viewer',
  'GET /usage/series': 'viewer',
  'GET /usage/records': 'viewer',
  'POST /keys': 'admin',
  'DELETE /keys/:id': 'admin',
};

/** /api/gateway: key management and usage totals, behind the admin guard (roles above). */
export async function adminRoutes(app: FastifyInstance, d: AdminDeps): Promise<void> {
  d.guard.hook(app, GATEWAY_ADMIN_ROLES);

  app.post('/keys', async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b))
      throw new KapokError('KAPOK_HTTP_BAD_REQUEST', 'body: a JSON object {name, rpm?, tpm?, models?}');
    const { key, info } = await d.keys.create({
      name: b.name as string,
      rpm: b.rpm as number | undefined,
      tpm: b.tpm as number | undefined,
      models: b.models as string[] | undefined,
    });
    return reply.code(201).send({ ...info, key });
  });

  app.get('/keys', async (req) => {
    const all = (req.query as Record<string, string>).all === 'true';
    return { keys: await d.keys.list(all) };
  });

  app.delete('/keys/:id', async (req) => {
    const id = await d.keys.revoke((req.params as { id: string }).id);
    return { id, revoked: true };
  });

  app.get('/usage', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    await d.usage.flush(); // totals include what this process has queued
    return queryUsage(d.store, { key: q.key, from: q.from, to: q.to, groupBy: q.groupBy });
  });

  // The console's usage page: server-side aggregates over the whole range, keyset-paged records.
  app.get('/usage/series', async (req) => {
    await d.usage.flush();
    return usageSeries(d.store, req.query as Record<string, string | undefined>);
  });

  app.get('/usage/records', async (req) => {
    await d.usage.flush();
    return usageRecords(d.store, req.query as Record<string, string | undefined>);
  });
}
