import { Counter, Histogram } from 'prom-client';
import type { CapabilityFactory } from '../ports/capability.js';
import type { RequestReply } from '../ports/request.js';
import type { SagaConfig } from './config.js';
import { Coordinator } from './engine.js';
import { SAGA_MIGRATIONS } from './migrations.js';
import { sagaRoutes } from './routes.js';
import { createTransport } from './transport.js';

/** What app.ts builds for saga: the NATS request-reply client when saga.natsUrl is set. */
export interface SagaDeps {
  nats: RequestReply | null;
}

/**
 * The saga coordinator (docs/saga.md): saga, tcc, msg and eos transactions across HTTP(S) and NATS
 * branches, durable in the Store, retried with capped backoff, dead-lettered to the Store and the
 * event bus (saga.dlq.added), resumed after a crash by whichever coordinator holds the lease.
 */
export const createSaga: CapabilityFactory<SagaConfig, SagaDeps> = async (ctx, deps) => {
  const cfg = ctx.config;
  await ctx.store.migrate(SAGA_MIGRATIONS);
  const transport = createTransport({ maxResponseBytes: cfg.maxResponseBytes, nats: deps.nats });
  const calls = new Counter({
    name: 'kapok_saga_branch_calls_total',
    help: 'Branch calls by outcome (ok, refused, retry).',
    labelNames: ['outcome'],
    registers: [ctx.metrics.registry],
  });
  const callTime = new Histogram({
    name: 'kapok_saga_branch_call_seconds',
    help: 'Time of one branch call, as the coordinator saw it.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60],
    registers: [ctx.metrics.registry],
  });
  const finals = new Counter({
    name: 'kapok_saga_transactions_total',
    help: 'Transactions reaching a final state (succeeded, aborted, dead).',
    labelNames: ['state'],
    registers: [ctx.metrics.registry],
  });
  const dead = new Counter({
    name: 'kapok_saga_dead_letters_total',
    help: 'Operations given up on and dead-lettered.',
    registers: [ctx.metrics.registry],
  });
  const coordinator = new Coordinator({
    store: ctx.store,
    config: cfg,
    transport,
    events: ctx.events,
    logger: ctx.logger,
    audit: () => ctx.ports.audit,
    // Stable across restarts on one dataDir: a restarted coordinator takes its leases back at once.
    owner: `saga-${ctx.events.instanceId}`,
    onCall: (o, ms) => {
      calls.inc({ outcome: o });
      callTime.observe(ms / 1000);
    },
    onFinal: (s) => finals.inc({ state: s }),
    onDeadLetter: () => dead.inc(),
  });
  const admin = ctx.adminGuard({ token: cfg.adminToken, key: 'saga.adminToken', what: 'the saga API' });
  ctx.health.register({
    name: 'saga',
    kind: 'capability',
    check: async () => {
      const [r] = await ctx.store.query<{ n: number }>(
        'SELECT COUNT(*) AS n FROM saga_dead WHERE resolved_at IS NULL',
      );
      return { ready: true, detail: { active: coordinator.activeCount, openDeadLetters: Number(r?.n ?? 0) } };
    },
  });
  return {
    name: 'saga',
    prefix: '/api/saga',
    routes: (app) => sagaRoutes(app, { store: ctx.store, admin, config: cfg, coordinator }),
    start: async () => coordinator.start(),
    stop: async () => {
      await coordinator.stop();
      await transport.close();
      await deps.nats?.close();
    },
  };
};
