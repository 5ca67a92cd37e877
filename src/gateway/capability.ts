import type { Capability, CapabilityContext } from '../ports/capability.js';
import { Authenticator } from './auth/index.js';
import { KeyStore } from './auth/key-store.js';
import { KeyService } from './auth/keys.js';
import type { GatewayConfig } from './config.js';
import { createGatewayMetrics } from './metrics.js';
import { GATEWAY_MIGRATIONS } from './migrations.js';
import { QuotaService } from './quota/service.js';
import { planGateway } from './reconfigure.js';
import { adminRoutes } from './routes/admin.js';
import { v1Routes } from './routes/v1.js';
import { Router } from './routing/router.js';
import { loadTokenCounter, type TokenCounter, type TokenizerName, tokenizerFor } from './routing/tokens.js';
import { createUpstream, type Upstream } from './upstream/pool.js';
import { UsageRecorder } from './usage/recorder.js';

/**
 * The LLM gateway capability: OpenAI-compatible /v1 in front of the configured upstreams, and the
 * admin API under /api/gateway. Everything is built here from config and the context's ports.
 */
export async function createGateway(ctx: CapabilityContext<GatewayConfig>): Promise<Capability> {
  let cfg = ctx.config;
  const logger = ctx.logger.child({ capability: 'gateway' });
  await ctx.store.migrate(GATEWAY_MIGRATIONS);

  let upstreams = new Map<string, Upstream>(cfg.providers.map((p, i) => [p.name, createUpstream(p, i)]));
  const tokenizers = new Map<string, TokenCounter>();
  for (const name of new Set<TokenizerName>(cfg.models.map(tokenizerFor))) {
    tokenizers.set(name, await loadTokenCounter(name));
  }
  const buildRouter = (config: GatewayConfig, ups: Map<string, Upstream>) =>
    new Router({
      config,
      upstreams: ups,
      tokenizers,
      onCircuitChange: (target, state) =>
        (state === 'closed' ? logger.info.bind(logger) : logger.warn.bind(logger))(
          { target, state },
          `circuit ${state}`,
        ),
    });
  let router = buildRouter(cfg, upstreams);
  const metrics = createGatewayMetrics(ctx.metrics.registry, () => router.circuitStates());
  const keys = new KeyService({
    store: new KeyStore(ctx.store),
    knownModels: new Set(router.routes.keys()),
    cacheMs: cfg.auth.keyCacheMs,
    // The revocation stands either way; a bus that refuses (outbox full) leaves other instances to
    // their cache expiry (gateway.auth.keyCacheMs), which the log says.
    onRevoked: async (id) => {
      await ctx.events
        .publish('gateway.key.revoked', { id })
        .catch((err: unknown) =>
          logger.error(
            { id, code: (err as { code?: string }).code, reason: (err as Error).message },
            'gateway.key.revoked not published: other instances accept the key until their cache expires',
          ),
        );
    },
  });
  // Any instance's revocation (HTTP, CLI): drop the key now, not at cache expiry. Idempotent.
  const offRevoked = ctx.events.subscribe(['gateway.key.revoked'], (e) => {
    if (typeof e.data.id === 'string') keys.forget(e.data.id);
  });
  const auth = () => new Authenticator(cfg, cfg.auth.apiKeys ? keys : null);
  const quota = new QuotaService(ctx.kv, {
    failOpen: cfg.limits.failOpen,
    logger,
    onFailOpen: () => metrics.quotaFailOpen.inc(),
  });
  const usage = new UsageRecorder({
    store: ctx.store,
    logger,
    ...cfg.usage,
    onDrop: (n) => metrics.usageDropped.inc(n),
  });

  ctx.health.register({
    name: 'gateway',
    kind: 'capability',
    check: () => {
      const circuits = router.circuitStates();
      const open = Object.entries(circuits)
        .filter(([, s]) => s !== 'closed')
        .map(([t]) => t);
      // Not ready only when no model can be served: every target's circuit is open. A load balancer
      // then sends clients to an instance that may still reach an upstream; some models down is
      // shown in the detail but keeps the instance in rotation for the others.
      const unavailable = router.unavailableModels();
      return {
        ready: router.routes.size === 0 || unavailable.length < router.routes.size,
        detail: {
          models: router.routes.size,
          ...(router.routes.size === 0
            ? { note: 'no models configured: set gateway.providers and gateway.models' }
            : {}),
          unavailable,
          circuits,
          open,
          usageQueue: usage.pending,
        },
      };
    },
  });

  const deps = {
    cfg,
    tracing: ctx.tracing,
    logger,
    metrics,
    quota,
    usage,
    auth: auth(),
    router,
    startedAtSec: Math.floor(Date.now() / 1000),
  };
  if (router.routes.size === 0)
    logger.info(
      'gateway: no models configured; /v1 answers model-not-found until gateway.providers and gateway.models are set (docs/gateway.md)',
    );

  return {
    name: 'gateway',
    async routes(app) {
      await app.register((scope) => v1Routes(scope, deps), { prefix: '/v1' });
      await app.register(
        (scope) =>
          adminRoutes(scope, {
            guard: ctx.adminGuard({
              token: cfg.auth.adminToken,
              key: 'gateway.auth.adminToken',
              what: 'the gateway admin API',
            }),
            keys,
            store: ctx.store,
            usage,
          }),
        { prefix: '/api/gateway' },
      );
    },
    async start() {
      usage.start();
    },
    reconfigure: (next, prev) =>
      planGateway(
        next as GatewayConfig,
        prev as GatewayConfig,
        { cfg, router, upstreams, tokenizers },
        buildRouter,
        (c, r, u) => {
          // One synchronous swap: a request reads deps once per step, old or new, never a mix.
          cfg = c;
          router = r;
          upstreams = u;
          deps.cfg = c;
          deps.router = r;
          deps.auth = auth();
        },
      ),
    async stop() {
      offRevoked();
      await usage.stop();
      await Promise.allSettled([...upstreams.values()].map((u) => u.pool.close()));
    },
  };
}
