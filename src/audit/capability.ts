import type { CapabilityFactory } from '../ports/capability.js';
import type { AuditConfig } from './config.js';
import { loadOrCreateSigningKey } from './keys.js';
import { AuditLog } from './log.js';
import { AUDIT_MIGRATIONS } from './migrations.js';
import { verifyStore } from './reader.js';
import { auditRoutes } from './routes.js';
import { Shipper } from './ship.js';
import { readAuditKek, readShipKey, trailOf } from './trail.js';

/**
 * The audit capability (docs/audit.md): the tamper-evident trail of administrative acts in the Store,
 * SM2-signed checkpoints, /api/audit, and sealed shipping to an audit centre. It starts before every
 * other capability and offers the trail to them as the `audit` port.
 */
export const createAudit: CapabilityFactory<AuditConfig> = async (ctx) => {
  const cfg = ctx.config;
  const kek = readAuditKek(cfg);
  const shipKey = cfg.ship.url ? readShipKey(cfg.ship) : null;
  await ctx.store.migrate(AUDIT_MIGRATIONS);
  const key = await loadOrCreateSigningKey(ctx.store, kek);
  const log = new AuditLog({
    store: ctx.store,
    batchMax: cfg.batchMax,
    checkpoint: { key, every: cfg.checkpointEvery, intervalMs: cfg.checkpointIntervalMs },
    logger: ctx.logger,
  });
  const trail = trailOf(log);
  const shipper =
    cfg.ship.url && shipKey
      ? new Shipper({
          store: ctx.store,
          url: cfg.ship.url,
          keyId: cfg.ship.keyId,
          key: shipKey,
          batch: cfg.ship.batch,
          intervalMs: cfg.ship.intervalMs,
          maxBackoffMs: cfg.ship.maxBackoffMs,
          timeoutMs: cfg.ship.timeoutMs,
          logger: ctx.logger,
        })
      : null;
  const admin = ctx.adminGuard({ token: cfg.adminToken, key: 'audit.adminToken', what: 'the audit API' });
  ctx.health.register({
    name: 'audit',
    kind: 'capability',
    check: async () => {
      await ctx.store.query('SELECT seq FROM audit_head WHERE id = 1');
      return { ready: true, detail: { keyId: key.id, shipping: cfg.ship.url ? 'on' : 'off' } };
    },
  });
  return {
    name: 'audit',
    prefix: '/api/audit',
    provides: { audit: { record: trail.record, recordAdminAct: trail.recordAdminAct } },
    routes: (app) =>
      auditRoutes(app, {
        store: ctx.store,
        admin,
        maxLimit: cfg.queryMaxLimit,
        maxRangeDays: cfg.queryMaxRangeDays,
      }),
    start: async () => {
      // A chain that no longer verifies at start is logged loudly; the start goes on (the acts must
      // still be recorded), and `kapok audit verify` names the damage.
      // From the last checkpoint: the whole chain is `kapok audit verify`'s (it may be millions).
      const [cp] = await ctx.store.query<{ seq: number | bigint | null }>(
        'SELECT MAX(seq) AS seq FROM audit_checkpoints',
      );
      const v = await verifyStore(ctx.store, Math.max(1, Number(cp?.seq ?? 1))).catch(() => null);
      if (v && !v.ok)
        ctx.logger.error(
          { code: 'KAPOK_AUDIT_CHAIN_BROKEN', problem: v.problem },
          'audit chain does not verify',
        );
      shipper?.start();
    },
    stop: async () => {
      await shipper?.close();
      await log.close();
    },
  };
};
