import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { KapokError } from '../core/errors.js';
import type { Capability, CapabilityContext } from '../ports/capability.js';
import { type V2xConfig, type Zone, zoneSchema } from './config.js';
import { Dispatcher } from './dispatch.js';
import { Engine, kindOfTopic } from './engine.js';
import { formatOf } from './frames.js';
import { Live } from './live.js';
import { createV2xMetrics } from './metrics.js';
import { planV2x } from './reconfigure.js';
import { V2X_ADMIN_ROLES, v2xRoutes } from './routes.js';
import { StrategyWal } from './wal.js';
import type { Warning } from './warning.js';

/** Zones set through the API survive restarts in this file (dataDir), over those in config. */
const ZONES_FILE = 'v2x-zones.json';

/**
 * V2X engine: MQTT messages (through edge's MQTT port) and HTTP batches → Engine (geofences,
 * state, risk) → warnings → strategies (WAL, QoS 1 publish until ack or expiry); live view on
 * /ws/v2x; API under /api/v2x.
 */
export async function createV2x(ctx: CapabilityContext<V2xConfig>): Promise<Capability> {
  const cfg = ctx.config;
  const logger = ctx.logger.child({ capability: 'v2x' });
  const mqtt = ctx.ports.mqtt ?? null;
  if (!mqtt)
    throw new KapokError(
      'KAPOK_START_FAILED',
      'v2x needs the MQTT port of the edge capability: set edge.enabled: true (v2x starts after edge)',
    );
  const upgrades = ctx.upgrades;
  const warnings: Warning[] = [];
  let live: Live | null = null;
  let dispatcher: Dispatcher | null = null;
  const engine = new Engine({
    cfg,
    onWarning: (rw) => {
      warnings.push(rw.warning);
      if (warnings.length > cfg.warningsKept) warnings.splice(0, warnings.length - cfg.warningsKept);
      dispatcher?.onWarning(rw);
      live?.broadcast({ type: 'warning', warning: rw.warning });
    },
    onZone: (vehicle, zone, event) => live?.broadcast({ type: 'zone', vehicle, zone, event, at: Date.now() }),
  });
  const zonesFile = resolve(ctx.dataDir, ZONES_FILE);
  loadZones(zonesFile, engine, logger);
  // A zone put or deleted on another instance (its own publish was applied already). Idempotent:
  // a redelivered event sets the same zone again.
  const offZones = ctx.events.subscribe(['v2x.zone.changed'], (e) => {
    if (e.origin === ctx.events.instanceId || typeof e.data.id !== 'string') return;
    if (e.data.zone === null) engine.geofences.delete(e.data.id);
    else engine.geofences.set(zoneSchema.parse(e.data.zone));
    saveZones(zonesFile, engine.geofences.list());
    logger.info(
      { zone: e.data.id, from: e.origin, deleted: e.data.zone === null },
      'v2x zone applied from the fleet',
    );
  });
  const wal = new StrategyWal({
    file: isAbsolute(cfg.wal.file) ? cfg.wal.file : resolve(ctx.dataDir, cfg.wal.file),
    fsync: cfg.wal.fsync,
    intervalMs: cfg.wal.intervalMs,
    compactBytes: cfg.wal.compactBytes,
  });
  const replayed = wal.open();
  const metrics = createV2xMetrics(ctx.metrics.registry, engine, () => dispatcher as Dispatcher);
  const d = new Dispatcher({
    wal,
    mqtt,
    ttlMs: cfg.strategy.ttlMs,
    retryMs: cfg.strategy.retryMs,
    maxPending: cfg.strategy.maxPending,
    logger,
    onLatency: (ms) => metrics.observe(ms),
  });
  dispatcher = d;
  const restored = d.restore(replayed);
  if (replayed.length || wal.corrupt)
    logger.info({ ...restored, corruptTail: wal.corrupt > 0 }, 'v2x strategies replayed from the WAL');
  live = new Live({
    maxClients: cfg.ws.maxClients,
    positionsEveryMs: cfg.ws.positionsEveryMs,
    positions: () => {
      const out = [];
      for (const v of engine.vehicles.values())
        out.push({ id: v.id, lat: v.lat, lon: v.lon, speedMs: v.speed, headingDeg: v.headingDeg });
      return out;
    },
  });

  const unsubscribe: Array<() => void> = [];
  /** The level of strategy.ackTopic that names the vehicle (its `+`), for acks through an external broker. */
  const ackLevel = cfg.strategy.ackTopic.split('/').indexOf('+');
  let sweeper: NodeJS.Timeout | undefined;
  ctx.health.register({
    name: 'v2x',
    kind: 'capability',
    // Not ready when strategies cannot reach vehicles (the MQTT port is gone: listener closed or
    // external broker unreachable) or cannot be made durable (the strategy log's writes fail).
    check: () => ({
      ready: mqtt.connected && wal.failure === null,
      detail: {
        mqtt: mqtt.connected ? 'connected' : 'disconnected',
        ...(wal.failure ? { walError: wal.failure } : {}),
        vehicles: engine.vehicles.size,
        pendingStrategies: d.pending,
        zones: engine.geofences.size,
      },
    }),
  });

  const guard = ctx.adminGuard({
    token: cfg.adminToken,
    key: 'v2x.adminToken',
    what: 'the v2x API',
  });
  return {
    name: 'v2x',
    reconfigure: (next, prev) =>
      planV2x(next as V2xConfig, prev as V2xConfig, engine, () =>
        saveZones(zonesFile, engine.geofences.list()),
      ),
    async routes(app) {
      await app.register(
        async (scope) => {
          guard.hook(scope, V2X_ADMIN_ROLES);
          await v2xRoutes(scope, {
            engine,
            dispatcher: d,
            warnings: () => warnings,
            metrics,
            maxBatch: cfg.maxBatch,
            onZonesChanged: (id, zone) => {
              saveZones(zonesFile, engine.geofences.list());
              // Each instance keeps its zones in its own dataDir: the event carries the zone itself.
              ctx.events
                .publish('v2x.zone.changed', { id, zone })
                .catch((err: unknown) =>
                  logger.error(
                    { zone: id, code: (err as { code?: string }).code, reason: (err as Error).message },
                    'v2x.zone.changed not published: other instances keep their old zone until it is set there too',
                  ),
                );
            },
          });
        },
        { prefix: '/api/v2x' },
      );
      app.addHook('preClose', async () => live?.close());
      upgrades.register('/ws/v2x', async (req, socket, head) => {
        if (await guard.upgrade(req, socket, 'viewer')) live?.upgrade(req, socket, head);
      });
    },
    async start() {
      unsubscribe.push(
        mqtt.subscribe(cfg.topics, (topic, payload, from, contentType) => {
          // A device speaks only for the vehicle id bound at its registration.
          const vehicle = from?.vehicle ?? null;
          engine.handlePayload(
            payload,
            formatOf(topic, payload, cfg.format, contentType),
            performance.now(),
            vehicle,
            vehicle === null ? null : kindOfTopic(topic),
          );
        }),
        mqtt.subscribe([cfg.strategy.ackTopic], (topic, payload, from) => {
          if (payload.length > 200) return;
          let id = payload.toString('utf8').trim();
          if (id.startsWith('{')) {
            try {
              id = String((JSON.parse(id) as { id?: unknown }).id ?? '');
            } catch {
              return;
            }
          }
          // The acker must be the strategy's vehicle: its device session (embedded broker), or the
          // topic's vehicle level (external broker, whose ACLs bind topics to clients).
          d.ack(id, from ? from.vehicle : ackLevel >= 0 ? (topic.split('/')[ackLevel] ?? null) : null);
        }),
      );
      d.start();
      sweeper = setInterval(() => engine.sweep(), 1000);
      sweeper.unref();
    },
    async stop() {
      offZones();
      for (const u of unsubscribe) u();
      clearInterval(sweeper);
      d.stop();
      live?.close();
      wal.close();
    },
  };
}

function loadZones(file: string, engine: Engine, logger: CapabilityContext['logger']): void {
  if (!existsSync(file)) return;
  try {
    const list = JSON.parse(readFileSync(file, 'utf8')) as unknown[];
    for (const z of list) engine.geofences.set(zoneSchema.parse(z));
  } catch (err) {
    logger.warn(
      { file, reason: (err as Error).message },
      'v2x zones file unreadable; using config zones only',
    );
  }
}

function saveZones(file: string, zones: Zone[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(zones));
  renameSync(tmp, file);
}
