import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { DestinationStream } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { type CapabilityName, type KapokConfig, type KapokLoadedConfig, loadKapokConfig } from './config.js';
import { CONSOLE_MIGRATIONS } from './console/migrations.js';
import { ConfigError } from './core/config/index.js';
import { isKapokError, KapokError, messageOf } from './core/errors.js';
import { Health } from './core/health.js';
import { createAdminGuard, type HashedToken, hashAdminTokens } from './core/http/admin-auth.js';
import { probeRoutes } from './core/http/probes.js';
import { createHttpServer, type FastifyInstance } from './core/http/server.js';
import type { Sessions } from './core/http/session.js';
import { createUpgradeRouter } from './core/http/upgrade.js';
import { createLogger, type Logger } from './core/log.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { describePlatform, detectPlatform } from './core/platform/index.js';
import { createTracing, type Tracing } from './core/tracing.js';
import { VERSION } from './core/version.js';
import { type EdgeConfig, type SinkConfig, sinkName } from './edge/config.js';
import type { Capability, CapabilityContext, ReconfigurePlan } from './ports/capability.js';
import type { ConfigSource, ConfigTree } from './ports/config-source.js';
import type { SharedPorts } from './ports/device-tokens.js';
import type { EventBus } from './ports/events.js';
import type { JobModel } from './ports/job-model.js';
import type { KV } from './ports/kv.js';
import type { InstanceConfigStatus, InstanceInfo, Registry } from './ports/registry.js';
import type { SpoolStore } from './ports/spool.js';
import type { Store } from './ports/store.js';
import type { TimeSeriesSink } from './ports/timeseries.js';

/**
 * The one wiring point: builds adapters from config and hands them, as ports, to the capabilities.
 * Nothing else in src/ picks an adapter. Adapters are imported lazily so a default start never loads
 * the PostgreSQL or Redis clients.
 */

/** What every capability is handed besides its own config section. */
type BaseContext = Omit<CapabilityContext, 'config'>;

/**
 * Each capability's wiring: its factory, its config section, and the adapters it needs built here.
 * A Record over every CapabilityName, so a capability in the schema without wiring does not compile;
 * a capability is imported only when enabled.
 */
const AVAILABLE: Record<
  CapabilityName,
  (base: BaseContext, config: KapokConfig, wiring: Wiring) => Promise<Capability>
> = {
  gateway: async (base, c) =>
    (await import('./gateway/index.js')).createGateway({ ...base, config: c.gateway }),
  inference: async (base, c) =>
    (await import('./inference/index.js')).createInference({ ...base, config: c.inference }),
  edge: (base, c) => buildEdge({ ...base, config: c.edge }),
  gm: async (base, c) => (await import('./gm/index.js')).createGm({ ...base, config: c.gm }, undefined),
  v2x: async (base, c) => (await import('./v2x/index.js')).createV2x({ ...base, config: c.v2x }),
  audit: async (base, c) =>
    (await import('./audit/index.js')).createAudit({ ...base, config: c.audit }, undefined),
  control: (base, c, w) => buildControl(base, c, w),
  jobs: async (base, c) =>
    (await import('./jobs/index.js')).createJobs({ ...base, config: c.jobs }, undefined),
  saga: async (base, c) => {
    // nats:// branches go through the request-reply port; its client loads only when configured.
    const url = c.saga.natsUrl;
    const nats = url
      ? await (await import('./adapters/nats/request.js')).createNatsRequestReply({ url })
      : null;
    return (await import('./saga/index.js')).createSaga({ ...base, config: c.saga }, { nats });
  },
  operator: (base, c) => buildOperator(base, c),
  console: async (base, c, w) =>
    (await import('./console/index.js')).createConsole(
      { ...base, config: c.console },
      { sessions: w.sessions as Sessions, tokensConfigured: () => w.roleTokens().length > 0 },
    ),
};

/** The operator: a Kubernetes client (client-node loads only here) and the jobs capability's model. */
async function buildOperator(base: BaseContext, c: KapokConfig): Promise<Capability> {
  const o = c.operator;
  const { createKubeClient } = await import('./adapters/kubernetes/client.js');
  const { core, validateSpec } = await import('./jobs/index.js');
  const kube = createKubeClient({
    kubeconfig: o.kubeconfig,
    qps: o.qps,
    burst: o.burst,
    watchIdleMs: o.watchIdleMs,
    retryBaseMs: o.retryBaseMs,
    retryMaxMs: o.retryMaxMs,
    timeoutMs: o.requestTimeoutMs,
  });
  const model: JobModel = { ...core, validateSpec };
  return (await import('./operator/index.js')).createOperator({ ...base, config: o }, { kube, model });
}

/** What the wiring point knows that one capability's entry may need: the others, the config sources. */
interface Wiring {
  /** The capabilities started so far, by section name. */
  readonly started: ReadonlyMap<string, Capability>;
  readonly boot: ConfigBoot | null;
  readonly registry: Registry | null;
  /** The console's browser sessions (console.enabled), accepted by every admin guard. */
  readonly sessions: Sessions | null;
  /** admin.tokens in force, hashed (hot reload replaces them). */
  readonly roleTokens: () => readonly HashedToken[];
  /** Applies a new admin section (hot reload): the guards' tokens, and the end of removed tokens' sessions. */
  readonly setAdmin: (next: KapokConfig['admin']) => Promise<void>;
}

/** The service registry (control.registry): etcd with source etcd, else this process only. */
async function openRegistry(c: KapokConfig, logger: Logger): Promise<Registry | null> {
  const ctl = c.control;
  if (!ctl.enabled || !ctl.registry.enabled) return null;
  if (ctl.source !== 'etcd') {
    const { createMemoryRegistry } = await import('./adapters/memory/registry.js');
    return createMemoryRegistry();
  }
  const { createEtcdClient } = await import('./adapters/etcd/client.js');
  const { createEtcdRegistry } = await import('./adapters/etcd/registry.js');
  const client = createEtcdClient({ endpoints: ctl.etcd.endpoints, callTimeoutMs: ctl.etcd.callTimeoutMs });
  const log = logger.child({ component: 'registry' });
  const r = createEtcdRegistry({
    client,
    prefix: ctl.registry.prefix,
    ttlSeconds: ctl.registry.ttlSeconds,
    onTrouble: (what) => log.warn({ reason: what }, 'service registry: reconnecting'),
  });
  return { ...r, close: () => r.close().finally(() => client.close()) };
}

/** Retries the first registration every second until the backend answers or the app stops. */
async function registerWhenUp(
  r: Registry,
  self: InstanceInfo,
  logger: Logger,
  stopped: () => boolean,
): Promise<void> {
  while (!stopped()) {
    try {
      await r.register(self);
      return;
    } catch (err) {
      logger.debug({ reason: messageOf(err) }, 'service registry: not registered yet');
      await new Promise((ok) => setTimeout(ok, 1000).unref());
    }
  }
}

/** This instance's record: where it serves and what it runs. */
function selfInfo(c: KapokConfig, port: number, capabilities: string[]): InstanceInfo {
  const host = c.http.host === '0.0.0.0' || c.http.host === '::' ? hostname() : c.http.host;
  const edgeBroker = c.edge.enabled && c.edge.mqtt.mode === 'embedded';
  return {
    id: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
      .replace(/[^A-Za-z0-9._:-]/g, '_')
      .slice(0, 128),
    region: c.region,
    labels: c.control.labels,
    version: VERSION,
    capabilities,
    http: `http://${host}:${port}`,
    grpc: c.inference.enabled ? `${host}:${c.grpc.port}` : null,
    mqtt: edgeBroker ? `mqtt://${host}:${c.edge.mqtt.port}` : null,
    startedAt: new Date().toISOString(),
  };
}

/**
 * The config sources (control.source): the file, then etcd; read once here so the whole start runs
 * on file ⊕ etcd ⊕ environment. Null when control is off (the file is read once, as before) or
 * when there is nothing to watch (no file, no etcd).
 */
interface ConfigBoot {
  loaded: KapokLoadedConfig;
  sources: ConfigSource[];
  layers: ConfigTree[];
  revisions: number[];
  /** Filled in by the control capability's wiring: SIGHUP's re-read. */
  refresh?: () => Promise<void>;
  /** Filled in by the control capability's wiring: the reload status now and after every reload. */
  configStatus?: () => InstanceConfigStatus;
  onReload?: (fn: () => void) => void;
  /** etcd was unreachable at start: the start ran on the etcd layer cached in dataDir. */
  fromCache: { file: string; revision: number; savedAt: string; reason: string } | null;
  /** Where the last good etcd layer is cached (source etcd only). */
  cache?:
    | {
        file: string;
        prefix: string;
        write: (file: string, prefix: string, rev: number, tree: ConfigTree) => void;
      }
    | undefined;
}

export async function openConfigSources(given: KapokLoadedConfig): Promise<ConfigBoot | null> {
  const c = given.config.control;
  // No file and no etcd: defaults and environment only, nothing that can change (kapok demo, embedders).
  if (!c.enabled || (c.source === 'file' && !given.file)) return null;
  const { createFileConfigSource } = await import('./adapters/file/config-source.js');
  const sources: ConfigSource[] = [
    createFileConfigSource({ file: given.file, debounceMs: c.fileDebounceMs }),
  ];
  try {
    let cache: ConfigBoot['cache'];
    let fromCache: ConfigBoot['fromCache'] = null;
    const read = [await (sources[0] as ConfigSource).read()];
    if (c.source === 'etcd') {
      const { createEtcdClient } = await import('./adapters/etcd/client.js');
      const { createEtcdConfigSource } = await import('./adapters/etcd/config-source.js');
      const { etcdPrefix, lastGoodFile, readLastGood, writeLastGood } = await import('./control/index.js');
      const client = createEtcdClient({ endpoints: c.etcd.endpoints, callTimeoutMs: c.etcd.callTimeoutMs });
      const prefix = etcdPrefix(c, given.config.region);
      const etcd = createEtcdConfigSource({
        client,
        prefix,
        probeIntervalMs: c.etcd.probeIntervalMs,
        labels: c.labels,
      });
      sources.push({ ...etcd, close: () => etcd.close().finally(() => client.close()) });
      const file = lastGoodFile(resolveDataDir(given));
      cache = { file, prefix, write: writeLastGood };
      try {
        read.push(await etcd.read());
      } catch (err) {
        if (!isKapokError(err, 'KAPOK_CONTROL_ETCD_UNAVAILABLE')) throw err;
        // Start on the last good layer; the source relists once etcd answers and the change applies.
        const last = readLastGood(file, prefix);
        if (!last)
          throw new KapokError(
            'KAPOK_CONTROL_ETCD_UNAVAILABLE',
            `${err.message}; no last good configuration is cached in ${file} (one is written after every start and change on etcd), so Kapok cannot start`,
            { cause: err },
          );
        read.push({ tree: last.tree, revision: last.revision });
        fromCache = { file, revision: last.revision, savedAt: last.savedAt, reason: err.message };
      }
    }
    const layers = read.map((l) => l.tree);
    // The file alone was just read by the caller: start on what it loaded, as without control.
    const loaded = sources.length > 1 ? composeConfig(given, layers) : given;
    const boot: ConfigBoot = {
      loaded,
      sources,
      layers,
      revisions: read.map((l) => l.revision),
      fromCache,
      cache,
    };
    if (cache && !fromCache) saveLastGood(boot, layers, boot.revisions);
    return boot;
  } catch (err) {
    await Promise.allSettled(sources.map((s) => s.close()));
    throw err;
  }
}

/**
 * The operator's handle on the etcd config prefix (`kapok config push|diff|history|rollback|status`):
 * the admin adapter, and a check of a prospective prefix content as an instance with `labels` would
 * compose it (this config file ⊕ the etcd layer ⊕ environment, the one schema).
 */
export async function openConfigAdmin(loaded: KapokLoadedConfig) {
  const c = loaded.config.control;
  if (c.source !== 'etcd')
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      'control.source: the operator commands work on etcd; set control.source: etcd (and control.etcd.endpoints) in the config given with --config',
    );
  const { createEtcdClient } = await import('./adapters/etcd/client.js');
  const { createEtcdConfigAdmin } = await import('./adapters/etcd/config-admin.js');
  const { buildLayer } = await import('./adapters/etcd/layer.js');
  const { createFileConfigSource } = await import('./adapters/file/config-source.js');
  const { etcdPrefix } = await import('./control/index.js');
  const prefix = etcdPrefix(c, loaded.config.region);
  const fileLayer = (await createFileConfigSource({ file: loaded.file }).read()).tree;
  const client = createEtcdClient({ endpoints: c.etcd.endpoints, callTimeoutMs: c.etcd.callTimeoutMs });
  const admin = createEtcdConfigAdmin({ client, prefix, registryPrefix: c.registry.prefix });
  const full = (keys: ReadonlyMap<string, string>) =>
    [...keys].map(([k, v]) => [prefix + k, v] as [string, string]);
  return {
    admin,
    region: loaded.config.region,
    layer: (keys: ReadonlyMap<string, string>, labels: Record<string, string>) =>
      buildLayer(prefix, full(keys), labels),
    /** Throws the error an instance with these labels would reject the content with. */
    check(keys: ReadonlyMap<string, string>, labels: Record<string, string>): void {
      composeConfig(loaded, [fileLayer, buildLayer(prefix, full(keys), labels)]);
    },
    close: () => client.close(),
  };
}

/** Caches the etcd layer of a configuration that validated (best effort: a full disk must not stop a reload). */
function saveLastGood(
  boot: ConfigBoot,
  layers: readonly ConfigTree[],
  revisions: readonly number[],
): string | null {
  if (!boot.cache || !layers[1]) return null;
  try {
    boot.cache.write(boot.cache.file, boot.cache.prefix, revisions[1] ?? 0, layers[1]);
    return null;
  } catch (err) {
    return messageOf(err);
  }
}

/** The layers (file, etcd) with KAPOK_* applied, validated by the one schema. */
function composeConfig(given: KapokLoadedConfig, layers: readonly ConfigTree[]): KapokLoadedConfig {
  return loadKapokConfig({ file: given.file ?? undefined, layers });
}

/** Control gets the hot-reload engine over the sources and every capability started before it. */
async function buildControl(base: BaseContext, c: KapokConfig, w: Wiring): Promise<Capability> {
  const { createControl, Reloader } = await import('./control/index.js');
  const boot = w.boot;
  if (!boot)
    return createControl(
      { ...base, config: c.control },
      { reloader: null, registry: w.registry, fromCache: null },
    );
  const reloader = new Reloader<KapokConfig>(
    {
      sources: boot.sources,
      layers: boot.layers,
      running: c,
      compose: (layers) => composeConfig(boot.loaded, layers).config,
      capabilities: w.started,
      live: {
        log: (next, prev) => logLevelPlan(base.logger, next, prev),
        // admin.tokens apply live: every guard reads the list in force, and the console sessions
        // of a removed token end (a changed role applies on the next request).
        admin: (next) => ({ restart: [], apply: () => w.setAdmin(next as KapokConfig['admin']) }),
      },
      logger: base.logger.child({ component: 'control' }),
      onAccepted: (layers, revisions) => {
        const failed = saveLastGood(boot, layers, revisions);
        if (failed) base.logger.warn({ reason: failed }, 'control: last good configuration not cached');
      },
      audit: base.ports.audit,
      events: base.events,
    },
    boot.revisions,
  );
  boot.refresh = () => reloader.refresh();
  boot.configStatus = () => {
    const { revisions, appliedAt, pendingRestart, lastError, applied, rejected } = reloader.status();
    return { revisions, appliedAt, pendingRestart, lastError, applied, rejected };
  };
  boot.onReload = (fn) => void reloader.onReload(fn);
  const cap = await createControl(
    { ...base, config: c.control },
    { reloader, registry: w.registry, fromCache: boot.fromCache },
  );
  return {
    ...cap,
    start: async () => {
      await cap.start?.();
      reloader.start();
    },
    stop: async () => {
      await Promise.allSettled(boot.sources.map((s) => s.close()));
      await cap.stop?.();
    },
  };
}

/** log.level applies live (pino's level); the other log keys (redact, ...) take a restart. */
function logLevelPlan(logger: Logger, next: unknown, prev: unknown): ReconfigurePlan {
  const n = next as KapokConfig['log'];
  const p = prev as KapokConfig['log'];
  const restart = Object.keys({ ...n, ...p }).filter(
    (k) => k !== 'level' && JSON.stringify(n[k as keyof typeof n]) !== JSON.stringify(p[k as keyof typeof p]),
  );
  return {
    restart,
    apply: () => {
      logger.level = n.level;
    },
  };
}

/** Edge gets a TimeSeriesSink per edge.sinks entry and the spool's storage; it closes them on stop. */
async function buildEdge(ctx: CapabilityContext<EdgeConfig>): Promise<Capability> {
  const { createEdge } = await import('./edge/index.js');
  const sinks: TimeSeriesSink[] = [];
  let spool: SpoolStore | undefined;
  try {
    for (const [i, s] of ctx.config.sinks.entries()) sinks.push(await openTimeSeriesSink(s, i, ctx.dataDir));
    spool = await openEdgeSpool(ctx.config, ctx.dataDir);
    return await createEdge(ctx, { sinks, spool });
  } catch (err) {
    spool?.close();
    await Promise.allSettled(sinks.map((s) => s.close()));
    throw err;
  }
}

const inDataDir = (file: string, dataDir: string) => (isAbsolute(file) ? file : resolve(dataDir, file));

/** The i-th edge.sinks entry as a TimeSeriesSink (PostgreSQL and InfluxDB clients load only when used). */
export async function openTimeSeriesSink(s: SinkConfig, i: number, dataDir: string): Promise<TimeSeriesSink> {
  const name = sinkName(s, i);
  try {
    if (s.type === 'postgres') {
      const { createPostgresTimeSeries } = await import('./adapters/postgres/timeseries.js');
      return createPostgresTimeSeries({ name, url: s.url as string, table: s.table });
    }
    if (s.type === 'influx') {
      const { createInfluxTimeSeries } = await import('./adapters/influx/timeseries.js');
      return createInfluxTimeSeries({
        name,
        url: s.url as string,
        version: s.version,
        db: s.db as string,
        org: s.org,
        token: s.token,
      });
    }
    const { createSqliteTimeSeries } = await import('./adapters/sqlite/timeseries.js');
    return createSqliteTimeSeries({ name, file: inDataDir(s.file, dataDir) });
  } catch (err) {
    // The adapter names its option; the operator needs the config key.
    if (isKapokError(err, 'KAPOK_CONFIG_INVALID'))
      throw new ConfigError('KAPOK_CONFIG_INVALID', `edge.sinks[${i}]: ${err.message}`, err);
    throw err;
  }
}

/** The storage of edge's durable spool (edge.spool.file in dataDir). */
export async function openEdgeSpool(edge: EdgeConfig, dataDir: string): Promise<SpoolStore> {
  const { createSqliteSpoolStore } = await import('./adapters/sqlite/spool.js');
  return createSqliteSpoolStore({ file: inDataDir(edge.spool.file, dataDir), fsync: edge.spool.fsync });
}

/** `kapok edge replay-dead-letters`: edge's replay over the spool storage picked here. */
export async function replayEdgeDeadLetters(
  edge: EdgeConfig,
  dataDir: string,
): Promise<ReturnType<typeof import('./edge/index.js').replayDeadLetters>> {
  const { replayDeadLetters } = await import('./edge/index.js');
  return replayDeadLetters(edge, await openEdgeSpool(edge, dataDir));
}

/**
 * Providers before consumers: audit first (every later capability records into its trail); gm's
 * device tokens are checked by edge's MQTT intake; v2x uses edge's MQTT port; control last (it
 * reconfigures the others).
 */
const START_ORDER: readonly CapabilityName[] = [
  'audit',
  'gm',
  'gateway',
  'inference',
  'edge',
  'v2x',
  'jobs',
  'saga',
  'operator',
  'console',
  'control',
];

export interface AppOptions {
  /** Log destination (tests capture lines); default stdout. */
  logDestination?: DestinationStream;
  /** Extra routes mounted at the root before the port opens (embedding Kapok, tests). */
  extraRoutes?: (app: FastifyInstance) => Promise<void>;
}

export interface RunningApp {
  readonly server: FastifyInstance;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly health: Health;
  readonly store: Store;
  readonly kv: KV;
  readonly events: EventBus;
  readonly tracing: Tracing;
  /** Bound HTTP port (differs from config when http.port is 0). */
  readonly port: number;
  /** The configuration the start ran on (file ⊕ etcd ⊕ environment when control is on). */
  readonly config: KapokConfig;
  /** Re-reads the config sources and applies what changed (SIGHUP); nothing when control is off. */
  reload(): Promise<void>;
  /** Stops taking requests, drains within shutdownTimeoutMs, closes backends. `clean` is false when the drain timed out. */
  stop(reason?: string): Promise<{ clean: boolean }>;
}

export function resolveDataDir(loaded: KapokLoadedConfig): string {
  const base = loaded.file ? resolve(loaded.file, '..') : process.cwd();
  return isAbsolute(loaded.config.dataDir) ? loaded.config.dataDir : resolve(base, loaded.config.dataDir);
}

/**
 * Creates dir one level at a time. Not `mkdirSync(dir, { recursive: true })`: on some filesystems
 * (procfs) Node's recursive mkdir retries ENOENT forever instead of failing.
 */
function mkdirs(dir: string): void {
  const missing: string[] = [];
  let cur = dir;
  while (!existsSync(cur)) {
    missing.unshift(cur);
    const parent = dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  for (const d of missing) mkdirSync(d);
}

export function ensureDataDir(dir: string): void {
  try {
    mkdirs(dir);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new KapokError(
      'KAPOK_START_DATA_DIR',
      `dataDir ${dir} cannot be created or written (${code}): set dataDir (KAPOK_DATA_DIR) to a writable directory or fix its permissions`,
      { cause: err },
    );
  }
}

export async function openStore(loaded: KapokLoadedConfig, dataDir: string, logger: Logger): Promise<Store> {
  const s = loaded.config.store;
  if (s.driver === 'postgres') {
    const { createPostgresStore } = await import('./adapters/postgres/store.js');
    return createPostgresStore({
      url: s.url as string,
      poolMax: s.poolMax,
      onError: (err) =>
        logger.warn({ code: (err as KapokError).code, reason: messageOf(err) }, 'postgres pool error'),
    });
  }
  const { createSqliteStore } = await import('./adapters/sqlite/store.js');
  return createSqliteStore({
    file: isAbsolute(s.file) ? s.file : resolve(dataDir, s.file),
    checkpointIntervalMs: s.checkpointIntervalMs,
    autocheckpointPages: s.walAutocheckpointPages,
  });
}

export async function openKV(loaded: KapokLoadedConfig, logger: Logger): Promise<KV> {
  const k = loaded.config.kv;
  if (k.driver === 'redis') {
    const { createRedisKV } = await import('./adapters/redis/kv.js');
    return createRedisKV({
      url: k.url as string,
      keyPrefix: k.keyPrefix,
      onError: (err) => logger.warn({ code: err.code, reason: err.message }, 'redis connection error'),
    });
  }
  const { createMemoryKV } = await import('./adapters/memory/kv.js');
  return createMemoryKV({ maxKeys: k.maxKeys });
}

/**
 * events.instanceId, or one derived from the host name and the dataDir: stable across restarts of
 * the same instance (same host, same dataDir), distinct for two instances on one host.
 */
export function eventsInstanceId(loaded: KapokLoadedConfig, dataDir: string): string {
  const set = loaded.config.events.instanceId;
  if (set) return set;
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 64) || 'host';
  return `${host}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
}

/**
 * The event bus of events.adapter. NATS keeps its outbox in the Store (migrated here) and is
 * created even when NATS is down: it reports not connected and keeps trying.
 */
export async function openEvents(
  loaded: KapokLoadedConfig,
  dataDir: string,
  store: Store,
  logger: Logger,
  /** false for the CLI: it publishes and creates no consumers. */
  consume = true,
): Promise<EventBus> {
  const e = loaded.config.events;
  const instanceId = eventsInstanceId(loaded, dataDir);
  const onHandlerError = (err: unknown, event: { type: string; id: string }) =>
    logger.error({ type: event.type, id: event.id, reason: messageOf(err) }, 'event handler failed');
  if (e.adapter === 'nats') {
    const { createNatsEventBus } = await import('./adapters/nats/events.js');
    const { EVENTS_MIGRATIONS } = await import('./adapters/nats/outbox.js');
    await store.migrate(EVENTS_MIGRATIONS);
    return createNatsEventBus({
      url: e.nats.url as string,
      store,
      instanceId,
      maxPayloadBytes: e.maxPayloadBytes,
      subjectPrefix: e.nats.subjectPrefix,
      outboxMax: e.nats.outboxMax,
      maxDeliver: e.nats.maxDeliver,
      ackWaitMs: e.nats.ackWaitMs,
      maxAgeSeconds: e.nats.maxAgeSeconds,
      consumerInactiveSeconds: e.nats.consumerInactiveSeconds,
      consume,
      onHandlerError,
      onWarning: (msg, fields) => logger.warn(fields ?? {}, msg),
    });
  }
  const { createMemoryEventBus } = await import('./adapters/memory/events.js');
  return createMemoryEventBus({ instanceId, maxPayloadBytes: e.maxPayloadBytes, onHandlerError });
}

/** kapok_events_* metrics, read from the bus when scraped. */
function eventMetrics(events: EventBus, metrics: Metrics): void {
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  counter('kapok_events_handled_total', 'Events whose handlers all resolved.', () => events.status().handled);
  counter(
    'kapok_events_handler_errors_total',
    'Event handler calls that failed.',
    () => events.status().handlerErrors,
  );
  counter(
    'kapok_events_dead_lettered_total',
    'Received messages dead-lettered (not an event, or its handlers kept failing).',
    () => events.status().deadLettered,
  );
  new Gauge({
    name: 'kapok_events_outbox_pending',
    help: 'Events published here and not yet accepted by the event backend.',
    registers: [metrics.registry],
    collect() {
      this.set(events.status().pending);
    },
  });
}

/** Builds and starts everything; on failure closes what was opened and rethrows a KapokError. */
export async function startApp(given: KapokLoadedConfig, opts: AppOptions = {}): Promise<RunningApp> {
  const boot = await openConfigSources(given);
  const loaded = boot?.loaded ?? given;
  const { config } = loaded;
  const logger = createLogger({
    level: config.log.level,
    redact: config.log.redact,
    base: { region: config.region },
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  });
  const dataDir = resolveDataDir(loaded);
  ensureDataDir(dataDir);
  if (boot?.fromCache)
    logger.warn(
      { ...boot.fromCache, component: 'control' },
      'etcd unreachable at start: running on the last good configuration cached in dataDir; it follows etcd once etcd answers',
    );

  const closers: Array<{ name: string; close: () => Promise<unknown> }> = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch (err) {
        logger.warn({ component: c.name, reason: messageOf(err) }, 'close failed');
      }
    }
  };

  if (boot)
    closers.push({ name: 'config sources', close: () => Promise.all(boot.sources.map((s) => s.close())) });
  try {
    const metrics = createMetrics({ defaultLabels: { region: config.region } });
    const tracing = await createTracing({
      serviceName: config.tracing.serviceName,
      otlpEndpoint: config.tracing.otlpEndpoint,
      headers: config.tracing.headers,
      sampleRatio: config.tracing.sampleRatio,
      attributes: { 'cloud.region': config.region },
    });
    closers.push({ name: 'tracing', close: () => tracing.shutdown() });

    const store = await openStore(loaded, dataDir, logger);
    closers.push({ name: 'store', close: () => store.close() });
    const kv = await openKV(loaded, logger);
    closers.push({ name: 'kv', close: () => kv.close() });
    const events = await openEvents(loaded, dataDir, store, logger);
    closers.push({ name: 'events', close: () => events.close() });
    eventMetrics(events, metrics);

    const health = new Health();
    health.register({
      name: `store:${store.dialect}`,
      kind: 'backend',
      check: () => store.ping().then(() => ({ ready: true })),
    });
    health.register({
      name: `kv:${kv.kind}`,
      kind: 'backend',
      check: () => kv.ping().then(() => ({ ready: true })),
    });
    health.register({
      name: `events:${events.kind}`,
      kind: 'backend',
      check: () => {
        const { connected, pending, detail } = events.status();
        return { ready: connected, detail: { pending, ...(detail ? { error: detail } : {}) } };
      },
    });

    // Draining (new requests refused, listener closed) starts after shutdownDelayMs of stopping.
    let draining = false;
    const server = createHttpServer({ config, logger, metrics, tracing, isDraining: () => draining });
    await server.register(probeRoutes, { region: config.region, health, metrics });

    const ports: SharedPorts = {};
    const upgrades = createUpgradeRouter(server.server, (err, path) =>
      logger.error({ path, reason: messageOf(err) }, 'WebSocket upgrade handler failed'),
    );
    // The CPU (Kunpeng, Phytium, ...) and NUMA layout, printed once; inference sizes its
    // default intra-op threads by it (docs/operations.md#cpu-and-numa).
    const platform = detectPlatform();
    logger.info({ platform: describePlatform(platform) }, 'platform');
    const shared = {
      region: config.region,
      profile: config.profile,
      http: { host: config.http.host },
      grpc: { port: config.grpc.port },
      platform,
    };
    // One admin rule: the profile, the role tokens (hashed once) and the start notice are decided
    // here, not by each capability.
    let roleTokens: readonly HashedToken[] = hashAdminTokens(config.admin.tokens);
    const tokens = () => roleTokens;
    // The console's login sessions, in the Store (they outlive a restart; instances on one
    // PostgreSQL share them): every guard takes the cookie in place of a bearer token.
    let sessions: Sessions | null = null;
    if (config.console.enabled) {
      await store.migrate(CONSOLE_MIGRATIONS);
      const s = (await import('./console/index.js')).createSessions({
        store,
        tokens,
        idleMs: config.console.sessionIdleMinutes * 60_000,
        maxAgeMs: config.console.sessionMaxHours * 3600_000,
        maxSessions: config.console.maxSessions,
        secure: config.console.secureCookie,
        onError: (err) => logger.warn({ reason: messageOf(err) }, 'console sessions: purge failed'),
      });
      // Closed before the store (closers run in reverse).
      closers.push({ name: 'console sessions', close: async () => s.close() });
      sessions = s;
    }
    const setAdmin = async (next: KapokConfig['admin']) => {
      roleTokens = hashAdminTokens(next.tokens);
      const ended = await sessions
        ?.prune()
        .catch((err) => logger.warn({ reason: messageOf(err) }, 'console sessions: prune failed'));
      if (ended) logger.info({ ended }, 'admin.tokens changed: console sessions of removed tokens ended');
    };
    // Every HTTP admin act and refusal goes to the audit trail from here (when audit is enabled).
    const adminGuard: BaseContext['adminGuard'] = (o) =>
      createAdminGuard({
        ...o,
        tokens,
        gov: config.profile === 'gov',
        logger,
        onAct: (e) => ports.audit?.recordAdminAct(e),
        ...(sessions ? { sessions } : {}),
      });
    const base: BaseContext = {
      shared,
      logger,
      metrics,
      tracing,
      health,
      store,
      kv,
      events,
      dataDir,
      ports,
      upgrades,
      adminGuard,
    };
    const registry = await openRegistry(config, logger);
    if (registry) closers.push({ name: 'registry', close: () => registry.close() });
    const capabilities: Capability[] = [];
    const started = new Map<string, Capability>();
    for (const name of START_ORDER) {
      const wire = AVAILABLE[name];
      if (!config[name].enabled) continue;
      const cap = await wire(base, config, {
        started,
        boot,
        registry,
        sessions,
        roleTokens: tokens,
        setAdmin,
      });
      // Stopped on a failed start too, its own start included: what its factory and a partial
      // start opened (timers, workers, listeners) must not keep the process alive.
      closers.push({ name, close: async () => cap.stop?.() });
      if (cap.routes)
        await server.register(async (scope) => cap.routes?.(scope), { prefix: cap.prefix ?? '' });
      await cap.start?.();
      Object.assign(ports, cap.provides);
      capabilities.push(cap);
      started.set(name, cap);
    }

    if (opts.extraRoutes) await server.register(opts.extraRoutes);

    const port = await listen(server, config.http.host, config.http.port);
    for (const cap of capabilities) cap.ready?.();
    let stopping: Promise<{ clean: boolean }> | undefined;
    const self = selfInfo(
      config,
      port,
      capabilities.map((c) => c.name),
    );
    const configStatus = boot?.configStatus;
    if (configStatus && registry) {
      // Each instance publishes the configuration it runs in its record (`kapok config status`):
      // the latest status at most every 200 ms (a burst of changes is one etcd write, not one each),
      // one write at a time so an older status never lands after a newer one.
      self.config = configStatus();
      let publishing: Promise<void> = Promise.resolve();
      let timer: NodeJS.Timeout | null = null;
      boot.onReload?.(() => {
        timer ??= setTimeout(() => {
          timer = null;
          self.config = configStatus();
          publishing = publishing
            .then(() => (stopping ? undefined : registry.update(self)))
            .catch((err) => logger.debug({ reason: messageOf(err) }, 'registry: status not published'));
        }, 200);
        timer.unref();
      });
    }
    // Started on the cached configuration: etcd is down, so register once it answers.
    if (boot?.fromCache && registry)
      void registerWhenUp(registry, self, logger, () => stopping !== undefined);
    else await registry?.register(self);
    await ports.audit?.record({
      actor: 'system',
      action: 'kapok.start',
      outcome: 'ok',
      target: capabilities.map((c) => c.name).join(','),
    });
    logger.info(
      {
        url: `http://${config.http.host}:${port}`,
        dataDir,
        store: store.dialect,
        kv: kv.kind,
        events: events.kind,
        capabilities: capabilities.map((c) => c.name),
      },
      'kapok ready',
    );

    const stop = (reason = 'stop') => {
      stopping ??= (async () => {
        // /readyz answers 503 from now on; during shutdownDelayMs everything else is still served,
        // so a load balancer (Kubernetes endpoints) can stop routing here before the port closes.
        health.markStopping();
        // Out of the fleet's list at once (a drain), not a TTL later.
        await registry
          ?.deregister()
          .catch((err) => logger.warn({ reason: messageOf(err) }, 'registry: deregister failed'));
        if (config.shutdownDelayMs > 0) {
          logger.info({ reason, delayMs: config.shutdownDelayMs }, 'stopping: not ready, still serving');
          await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
        }
        logger.info({ reason, timeoutMs: config.shutdownTimeoutMs }, 'draining');
        draining = true;
        const clean = await drain(server, config.shutdownTimeoutMs);
        // Recorded after the last request, before audit (started first) stops last.
        await ports.audit
          ?.record({ actor: 'system', action: 'kapok.stop', outcome: 'ok', target: reason.slice(0, 100) })
          .catch((err) => logger.error({ reason: messageOf(err) }, 'audit: kapok.stop not recorded'));
        if (!clean)
          logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'drain timed out; open requests were cut');
        await closeAll();
        logger.info({ clean }, 'stopped');
        return { clean };
      })();
      return stopping;
    };
    const reload = async () => {
      await boot?.refresh?.();
    };
    return { server, logger, metrics, health, store, kv, events, tracing, port, config, reload, stop };
  } catch (err) {
    await closeAll();
    throw err instanceof KapokError
      ? err
      : new KapokError('KAPOK_START_FAILED', `start failed: ${messageOf(err)}`, { cause: err });
  }
}

async function listen(server: FastifyInstance, host: string, port: number): Promise<number> {
  try {
    await server.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new KapokError(
        'KAPOK_START_PORT_IN_USE',
        `http.port ${port} on ${host} is in use: stop the process holding it or set http.port (KAPOK_HTTP__PORT) to a free port`,
        { cause: err },
      );
    }
    if (code === 'EACCES') {
      throw new KapokError(
        'KAPOK_START_FAILED',
        `http.port ${port}: permission denied; use a port above 1023 or grant CAP_NET_BIND_SERVICE`,
        { cause: err },
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new KapokError(
        'KAPOK_START_FAILED',
        `http.host ${host} is not an address of this machine: set http.host (e.g. 0.0.0.0)`,
        { cause: err },
      );
    }
    throw err;
  }
  const addr = server.server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/** close() stops accepting and waits for in-flight requests; past the deadline open sockets are cut. */
async function drain(server: FastifyInstance, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), timeoutMs);
  });
  const closed = server.close().then(() => true as const);
  // A connection whose response was already under way when the drain began turns idle (kept alive)
  // afterwards; close such sockets as they go idle instead of waiting for keepAliveTimeoutMs.
  // Connections that never sent a request are idle too (the guard's sweep covers them).
  const sweep = () => {
    server.server.closeIdleConnections();
    server.connections.closeIdle();
  };
  sweep();
  const sweeper = setInterval(sweep, 50);
  const clean = await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  clearInterval(sweeper);
  if (!clean) {
    // closeAllConnections misses upgraded sockets (WebSockets); the guard holds every socket.
    server.server.closeAllConnections();
    server.connections.destroyAll();
    await closed;
  }
  return clean;
}
