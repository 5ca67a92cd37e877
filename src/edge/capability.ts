import type { Capability, CapabilityContext } from '../ports/capability.js';
import type { MqttPort } from '../ports/mqtt.js';
import type { SpoolStore } from '../ports/spool.js';
import type { TimeSeriesSink } from '../ports/timeseries.js';
import type { EdgeConfig } from './config.js';
import { createDecoder, type Decoder, type Point } from './decode/index.js';
import { Fanout } from './fanout.js';
import { Ingest } from './ingest.js';
import { Acl } from './intake/acl.js';
import { deviceTokenAuthenticate, staticAuthenticate } from './intake/auth.js';
import { type BrokerEvent, EmbeddedBroker } from './intake/embedded.js';
import { ExternalClient } from './intake/external.js';
import { Taps } from './intake/taps.js';
import { createEdgeMetrics } from './metrics.js';
import { type EdgeLive, planEdge } from './reconfigure.js';
import { EDGE_ADMIN_ROLES, edgeRoutes } from './routes.js';
import { DecodedCache } from './spool/decoded-cache.js';
import { SinkRunner } from './spool/runner.js';
import { Spool } from './spool/spool.js';
import { writeAuthenticate } from './write/auth.js';
import { topicBuilder, writeRoutes } from './write/routes.js';
import { withWriteChunks } from './write/spooled.js';

/** Decoded points kept for the sink runners at most (a few hundred bytes each: tens of MB). */
const DECODED_CACHE_POINTS = 200_000;

/** Live fan-out of HTTP-written points: one frame per run of points with the same telemetry topic. */
function publishRuns(
  points: readonly Point[],
  topicOf: (device: string, measurement: string) => string,
  publish: (topic: string, points: Point[]) => void,
): void {
  let topic = '';
  let run: Point[] = [];
  for (const p of points) {
    const t = topicOf(p.device, p.measurement);
    if (t !== topic && run.length > 0) {
      publish(topic, run);
      run = [];
    }
    topic = t;
    run.push(p);
  }
  if (run.length > 0) publish(topic, run);
}

/** What the wiring point (src/app.ts) builds for edge from edge.sinks and edge.spool. */
export interface EdgeDeps {
  /** One per edge.sinks entry, in order; each name is its spool cursor. Edge closes them on stop. */
  sinks: readonly TimeSeriesSink[];
  /** Storage of the durable spool. Edge closes it on stop. */
  spool: SpoolStore;
}

/**
 * Edge telemetry: MQTT intake (embedded Aedes broker or external client) → decode → durable spool
 * → one runner per sink; live fan-out on /ws/telemetry; queries under /api/edge.
 */
export async function createEdge(ctx: CapabilityContext<EdgeConfig>, deps: EdgeDeps): Promise<Capability> {
  const cfg = ctx.config;
  const { sinks } = deps;
  const names = sinks.map((s) => s.name);
  if (sinks.length === 0 || new Set(names).size !== sinks.length)
    throw new TypeError(
      `createEdge: deps.sinks must be one or more sinks with distinct names (got ${names})`,
    );
  const upgrades = ctx.upgrades;
  const logger = ctx.logger.child({ capability: 'edge' });
  const metrics = createEdgeMetrics(ctx.metrics.registry);
  let decoder = createDecoder({ topicPattern: cfg.topicPattern, format: cfg.format });
  // One indirection, so that a live reconfiguration swaps the decoder for intake and runners at once.
  const decode: Decoder = (topic, payload, receivedAt) => decoder(topic, payload, receivedAt);

  const spool = new Spool({
    store: deps.spool,
    maxBytes: cfg.spool.maxBytes,
    onFull: cfg.spool.onFull,
    sinks: names,
    deadLetterMax: cfg.deadLetters.max,
    onDrop: (n, bytes) => {
      metrics.dropped.inc({ reason: 'drop_oldest' }, n);
      logger.warn(
        { messages: n, bytes, maxBytes: cfg.spool.maxBytes },
        'edge spool full: dropped oldest messages',
      );
    },
  });
  metrics.spoolBytes.set(spool.bytes);
  const cache = new DecodedCache(DECODED_CACHE_POINTS);
  // Runners also decode what the InfluxDB write API spooled (MQTT intake never does).
  const decodeSpooled = withWriteChunks(decode);
  const runnerOptions: EdgeLive['runners'] = [];
  const runners = sinks.map(
    (sink) =>
      new SinkRunner(
        track(runnerOptions, {
          spool,
          sink,
          decode: decodeSpooled,
          cache,
          batchSize: cfg.batch.size,
          intervalMs: cfg.batch.intervalMs,
          retryMinMs: cfg.retry.minMs,
          retryMaxMs: cfg.retry.maxMs,
          logger,
          onStored: (name, points, seconds, oldest) => {
            metrics.stored.inc({ sink: name }, points);
            metrics.batchSeconds.observe({ sink: name }, seconds);
            if (oldest > 0) metrics.lagSeconds.observe({ sink: name }, (Date.now() - oldest) / 1000);
            metrics.spoolBytes.set(spool.bytes);
          },
          onFailure: (name) => metrics.sinkFailures.inc({ sink: name }),
          onRejected: (name, points, reason) => {
            metrics.dropped.inc({ reason: 'sink_rejected' }, points);
            logger.warn({ sink: name, points, reason }, 'edge sink refused a batch as bad data; not retried');
          },
        }),
      ),
  );
  const fanout = new Fanout({ ...cfg.fanout, metrics });
  const ingest = new Ingest({
    spool,
    cache,
    decode,
    maxPayloadBytes: cfg.mqtt.maxPayloadBytes,
    metrics,
    logger,
    onPoints: (topic, points) => fanout.publish(topic, points),
    onSpooled: () => {
      for (const r of runners) r.notify();
    },
  });
  const fallback = staticAuthenticate(cfg.auth);
  const tokens = ctx.ports.deviceTokens;
  const authenticate = tokens ? deviceTokenAuthenticate(tokens, fallback) : fallback;
  // A device revoked here loses its MQTT sessions at once; one revoked by another process within
  // about a second (gm polls the Store); a token's session ends when the token expires.
  let unsubscribeRevoked: (() => void) | undefined;
  const taps = new Taps();
  const acl = new Acl(cfg.acl, cfg.topicPattern);
  if (!acl.enabled)
    logger.warn('edge.acl.enabled is false: every MQTT client may publish and subscribe to anything');
  else if (cfg.auth.anonymous && !cfg.acl.grants.some((g) => g.who === 'anonymous'))
    logger.warn(
      'edge.auth.anonymous is on but no edge.acl grant names anonymous: such clients can do nothing',
    );
  const events: Record<BrokerEvent, () => void> = {
    publish_refused: () => metrics.mqttRefused.inc({ action: 'publish' }),
    subscribe_refused: () => metrics.mqttRefused.inc({ action: 'subscribe' }),
    session_expired: () => metrics.mqttSessionsEnded.inc({ reason: 'expired' }),
    session_revoked: () => metrics.mqttSessionsEnded.inc({ reason: 'revoked' }),
    connection_refused_ip: () => metrics.mqttConnectionsRefused.inc({ reason: 'per_ip' }),
    connection_refused_total: () => metrics.mqttConnectionsRefused.inc({ reason: 'total' }),
  };
  const broker =
    cfg.mqtt.mode === 'embedded'
      ? new EmbeddedBroker({
          host: cfg.mqtt.host,
          port: cfg.mqtt.port,
          topics: cfg.mqtt.topics,
          ingest,
          authenticate,
          acl,
          logger,
          taps,
          limits: {
            connectTimeoutMs: cfg.mqtt.connectTimeoutMs,
            idleTimeoutMs: cfg.mqtt.idleTimeoutMs,
            maxConnectionsPerIp: cfg.mqtt.maxConnectionsPerIp,
            maxConnections: cfg.mqtt.maxConnections,
          },
          mqtt5: {
            maxPacketBytes: cfg.mqtt.maxPacketBytes,
            topicAliasMaximum: cfg.mqtt.topicAliasMaximum,
            sessionExpiryMaxS: cfg.mqtt.sessionExpiryMaxS,
            maxPendingSessions: cfg.mqtt.maxPendingSessions,
          },
          onEvent: (e) => events[e](),
        })
      : null;
  if (broker && tokens)
    unsubscribeRevoked = tokens.onRevoked((device) => {
      const n = broker.disconnectDevice(device);
      if (n) logger.info({ device, sessions: n }, 'revoked device disconnected');
    });
  const external =
    cfg.mqtt.mode === 'external'
      ? new ExternalClient({
          url: cfg.mqtt.url as string,
          clientId: cfg.mqtt.clientId,
          topics: cfg.mqtt.topics,
          shareGroup: cfg.mqtt.shareGroup,
          reconnectMinMs: cfg.mqtt.reconnectMinMs,
          reconnectMaxMs: cfg.mqtt.reconnectMaxMs,
          receiveMaximum: cfg.mqtt.receiveMaximum,
          ingest,
          logger,
          taps,
        })
      : null;
  // The MQTT port (v2x): tapped topics skip the telemetry intake; see docs/edge.md.
  const mqttPort: MqttPort = {
    mode: cfg.mqtt.mode,
    get connected() {
      return broker ? broker.listening : (external?.connected ?? false);
    },
    subscribe(filters, handler) {
      const off = taps.add(filters, handler);
      external?.subscribeTaps();
      return off;
    },
    publish(topic, payload, opts) {
      const timeoutMs = opts.timeoutMs ?? 5000;
      if (broker) return broker.publish(topic, payload, opts.qos, timeoutMs, opts.acceptAck);
      return (external as ExternalClient).publish(topic, payload, opts.qos, timeoutMs);
    },
  };
  // Queries go to the first sink that answers them (the embedded one).
  const query = sinks.find((s) => s.query)?.query ?? null;

  sinks.forEach((sink, i) => {
    const runner = runners[i] as SinkRunner;
    ctx.health.register({
      name: `edge:sink:${sink.name}`,
      kind: 'backend',
      check: async () => {
        if (runner.failing)
          return { ready: false, detail: { lastError: runner.lastError, backlog: spool.backlog(sink.name) } };
        await sink.ping();
        return { ready: true, detail: { backlog: spool.backlog(sink.name) } };
      },
    });
  });
  ctx.health.register({
    name: 'edge',
    kind: 'capability',
    check: () => ({
      ready: mqttPort.connected,
      detail: {
        mode: cfg.mqtt.mode,
        ...(broker
          ? { mqttPort: broker.port }
          : { connected: external?.connected, lastError: external?.lastError }),
        spoolBytes: spool.bytes,
        wsClients: fanout.clients,
      },
    }),
  });

  const guard = ctx.adminGuard({
    token: cfg.adminToken,
    key: 'edge.adminToken',
    what: 'the edge API',
  });
  let stopped = false;
  return {
    name: 'edge',
    provides: { mqtt: mqttPort },
    reconfigure: (next, prev) =>
      planEdge(next as EdgeConfig, prev as EdgeConfig, {
        setDecoder: (d) => {
          decoder = d;
        },
        runners: runnerOptions,
      }),
    async routes(app) {
      await app.register(
        async (scope) => {
          guard.hook(scope, EDGE_ADMIN_ROLES);
          await edgeRoutes(scope, { query, maxPoints: cfg.query.maxPoints, spool });
        },
        {
          prefix: '/api/edge',
        },
      );
      if (cfg.write.enabled) {
        const topicOf = topicBuilder(cfg.topicPattern);
        await app.register((scope) =>
          writeRoutes(scope, {
            authenticate: writeAuthenticate(authenticate, tokens),
            acl,
            topicPattern: cfg.topicPattern,
            spool,
            maxBodyBytes: cfg.write.maxBodyBytes,
            maxLineBytes: cfg.write.maxLineBytes,
            registry: ctx.metrics.registry,
            isStopped: () => stopped,
            onSpooled: (ids, chunks) => {
              let points = 0;
              ids.forEach((id, i) => {
                const pts = chunks[i] ?? [];
                points += pts.length;
                cache.set(id, pts);
                if (fanout.clients > 0) publishRuns(pts, topicOf, (t, run) => fanout.publish(t, run));
              });
              metrics.received.inc();
              metrics.decoded.inc(points);
              metrics.spooled.inc(ids.length);
              metrics.spoolBytes.set(spool.bytes);
              for (const r of runners) r.notify();
            },
          }),
        );
      }
      // Upgraded sockets are outside the HTTP drain (it would wait for them until the timeout).
      app.addHook('preClose', async () => {
        broker?.closeWebSockets();
        fanout.closeClients();
      });
      if (broker && cfg.mqtt.wsPath)
        upgrades.register(cfg.mqtt.wsPath, (req, socket, head) => broker.upgrade(req, socket, head));
      upgrades.register('/ws/telemetry', async (req, socket, head) => {
        if (await guard.upgrade(req, socket, 'viewer')) fanout.upgrade(req, socket, head);
      });
    },
    async start() {
      for (const r of runners) r.start();
      await broker?.start();
      await external?.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      unsubscribeRevoked?.();
      await broker?.stop();
      await external?.stop();
      ingest.close();
      fanout.close();
      await Promise.all(runners.map((r) => r.stop()));
      await Promise.allSettled(sinks.map((s) => s.close()));
      spool.close();
    },
  };
}

/** Keeps the options object a runner reads, so a live reconfiguration can change it. */
function track<T extends EdgeLive['runners'][number]>(into: EdgeLive['runners'], o: T): T {
  into.push(o);
  return o;
}
