import { z } from 'zod';
import { secret } from '../core/config/secret.js';
import { grantProblem } from './intake/acl.js';

/**
 * The `edge` section of the one config schema (composed in src/config.ts). Defaults live
 * here; kapok.example.yaml and docs/edge.md mirror them.
 */

const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const port = z.number().int().min(0).max(65535);

const mqtt = z.strictObject({
  /** embedded: Aedes broker in Kapok; external: a persistent-session client of another broker. */
  mode: z.enum(['embedded', 'external']).default('embedded'),
  /** Embedded: TCP port of the broker (0 = ephemeral, tests). */
  port: port.default(1883),
  /** Embedded: listen address of the TCP broker. */
  host: z.string().min(1).default('0.0.0.0'),
  /** Embedded: MQTT over WebSocket on the main HTTP port at this path; null = off. */
  wsPath: z
    .string()
    .regex(/^\/[A-Za-z0-9/_.-]*$/, 'a URL path starting with /')
    .nullable()
    .default('/mqtt'),
  /** Filters consumed (external) or accepted for publishing (embedded). */
  topics: z.array(z.string().min(1)).min(1).default(['telemetry/#']),
  /** External: broker URL, e.g. mqtt://127.0.0.1:1883 (secret: may carry credentials). */
  url: secret(z.string().min(1)).nullable().default(null),
  /** External: fixed client id so the broker keeps the session (clean: false) across restarts. */
  clientId: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _ . : - (at most 64)')
    .default('kapok-edge'),
  /** External: subscribe as $share/<group>/<filter> so several Kapoks split the load; null = off. */
  shareGroup: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - (at most 64)')
    .nullable()
    .default(null),
  /** External: reconnect backoff, doubled per failed attempt up to reconnectMaxMs. */
  reconnectMinMs: ms(50, 60_000).default(500),
  reconnectMaxMs: ms(100, 600_000).default(30_000),
  /**
   * External: messages in flight to Kapok (taken in, not yet acknowledged) at most: MQTT 5 Receive
   * Maximum, the broker's window towards Kapok; with a 3.1.1 broker its own setting decides.
   */
  receiveMaximum: z.number().int().min(1).max(65_535).default(1000),
  /** Largest MQTT packet accepted by the embedded broker's decoder (bytes). */
  maxPayloadBytes: z.number().int().min(256).max(268_435_455).default(1_048_576),
  /** Embedded: largest MQTT packet accepted, advertised to MQTT 5 clients; a larger one ends the connection. */
  maxPacketBytes: z.number().int().min(1024).max(268_435_455).default(16_777_216),
  /** Embedded, MQTT 5: topic aliases a client may set per connection (0 = none). */
  topicAliasMaximum: z.number().int().min(0).max(65_535).default(32),
  /** Embedded, MQTT 5: Session Expiry Interval granted at most (seconds); larger requests are clamped. */
  sessionExpiryMaxS: z.number().int().min(1).max(4_294_967_295).default(86_400),
  /** Embedded, MQTT 5: sessions kept after their connection at most (a client cycling ids cannot pile them up). */
  maxPendingSessions: z.number().int().min(1).max(10_000_000).default(10_000),
  /** Embedded: a new connection that sends no CONNECT within this is closed. */
  connectTimeoutMs: ms(100, 120_000).default(10_000),
  /** Embedded: a connection with no traffic at all for this long is closed (keepalive 0 included). */
  idleTimeoutMs: ms(1000, 86_400_000).default(300_000),
  /** Embedded: open connections per client IP address at most (TCP and WebSocket together). */
  maxConnectionsPerIp: z.number().int().min(1).max(1_000_000).default(100),
  /** Embedded: open connections at most. */
  maxConnections: z.number().int().min(1).max(10_000_000).default(100_000),
});

const aclFilter = z.string().min(1).max(256);
const grant = z.strictObject({
  /** `user:<edge.auth.users name>`, `group:<gm device group>` or `anonymous`. */
  who: z
    .string()
    .regex(
      /^(anonymous|user:[^\s]{1,128}|group:[A-Za-z0-9._:-]{1,64})$/,
      'user:<name>, group:<device group> or anonymous',
    ),
  /** Topic filters this subject may publish to (`{device}`, `{vehicle}` levels in group grants). */
  publish: z.array(aclFilter).max(256).default([]),
  /** Topic filters this subject may subscribe to (or to narrower filters). */
  subscribe: z.array(aclFilter).max(256).default([]),
});

/** MQTT authorization of the embedded broker (docs/edge.md, "Authorization"): nothing by default. */
const acl = z.strictObject({
  /** false: every connected client may publish and subscribe anything (closed test benches only). */
  enabled: z.boolean().default(true),
  /** What every device (gm token) may do with its own topics; {device} = serial, {vehicle} = its vehicle id. */
  devices: z
    .strictObject({
      /** Besides its telemetry topics (topicPattern with {device} = its serial). */
      publish: z
        .array(aclFilter)
        .max(256)
        .default(['v2x/{vehicle}/bsm', 'v2x/{vehicle}/bsm/+', 'v2x/{vehicle}/strategy/ack']),
      subscribe: z.array(aclFilter).max(256).default(['cmd/{device}/#', 'v2x/{vehicle}/strategy']),
    })
    .prefault({}),
  /** Further rights, per static user, device group or anonymous clients. */
  grants: z.array(grant).max(1000).default([]),
});

const auth = z.strictObject({
  /** Let clients connect without credentials. Off by default: set it, or list users. */
  anonymous: z.boolean().default(false),
  /** Static credentials; device tokens from the gm capability plug in through the same hook. */
  users: secret(
    z.array(z.strictObject({ username: z.string().min(1), password: z.string().min(1) })),
  ).default([]),
});

/**
 * One object for every sink type (not a discriminated union): the config walker that redacts
 * secrets and lists keys follows objects and arrays, so `url` stays a redacted secret.
 */
const sink = z.strictObject({
  type: z.enum(['embedded', 'postgres', 'influx']),
  /** embedded: SQLite file for points, relative to dataDir unless absolute. */
  file: z.string().min(1).default('edge-points.db'),
  /** postgres: connection URL; influx: base URL, e.g. http://127.0.0.1:8086 (secret). */
  url: secret(z.string().min(1)).nullable().default(null),
  /** postgres: table (created when missing; a TimescaleDB hypertable when the extension exists). */
  table: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier')
    .default('edge_points'),
  /** influx: 1 (POST /write?db=) or 2 (POST /api/v2/write?org=&bucket=). */
  version: z.union([z.literal(1), z.literal(2)]).default(1),
  /** influx 1: database; influx 2: bucket. */
  db: z.string().min(1).nullable().default(null),
  /** influx 2: organisation. */
  org: z.string().min(1).nullable().default(null),
  /** influx: token (v2 `Authorization: Token`, v1 with InfluxDB 1.8+ auth) (secret). */
  token: secret(z.string().min(1)).nullable().default(null),
});

const DEFAULT_SINK = {
  type: 'embedded' as const,
  file: 'edge-points.db',
  url: null,
  table: 'edge_points',
  version: 1 as const,
  db: null,
  org: null,
  token: null,
};

export const edgeSchema = z
  .strictObject({
    // On by default: it needs nothing outside this machine (docs/configuration.md, "Embedded defaults").
    enabled: z.boolean().default(true),
    /** Bearer token for /api/edge/* and /ws/telemetry; null: loopback clients only under profile default, no one under gov. */
    adminToken: secret(z.string().min(16)).nullable().default(null),
    mqtt: mqtt.prefault({}),
    auth: auth.prefault({}),
    acl: acl.prefault({}),
    /** Topic levels naming the device and measurement; other literal levels must match. */
    topicPattern: z
      .string()
      .regex(/\{device\}/, 'must contain {device}')
      .default('telemetry/{device}/{measurement}'),
    /** Payload format: auto tells JSON ({ or [) from line protocol by the first byte. */
    format: z.enum(['auto', 'json', 'line']).default('auto'),
    batch: z
      .strictObject({
        /** Spooled messages read per sink write. */
        size: z.number().int().min(1).max(100_000).default(200),
        /** Longest a partial batch waits. */
        intervalMs: ms(1, 60_000).default(100),
      })
      .prefault({}),
    spool: z
      .strictObject({
        /** Spool size bound (payload and topic bytes of messages not yet confirmed by every sink). */
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .max(2 ** 50)
          .default(1_073_741_824),
        /** reject: stop acknowledging (publishers retry); drop-oldest: drop, count and log. */
        onFull: z.enum(['reject', 'drop-oldest']).default('reject'),
        /** normal: survives a Kapok crash (WAL, no fsync per commit); full: also power loss (fsync). */
        fsync: z.enum(['normal', 'full']).default('normal'),
        /** Spool file, relative to dataDir unless absolute. */
        file: z.string().min(1).default('edge-spool.db'),
      })
      .prefault({}),
    sinks: z.array(sink).min(1).default([DEFAULT_SINK]),
    retry: z
      .strictObject({
        /** Backoff after a failed sink write: min doubled per failure up to max, with full jitter. */
        minMs: ms(1, 60_000).default(100),
        maxMs: ms(10, 600_000).default(30_000),
      })
      .prefault({}),
    deadLetters: z
      .strictObject({
        /** Undecodable messages kept at most (oldest removed first). */
        max: z.number().int().min(0).max(10_000_000).default(10_000),
      })
      .prefault({}),
    query: z
      .strictObject({
        /** Largest number of windows (or raw points) one query may return. */
        maxPoints: z.number().int().min(1).max(10_000_000).default(10_000),
      })
      .prefault({}),
    /** The InfluxDB write API (docs/edge.md#influxdb-write-api): /write and /api/v2/write. */
    write: z
      .strictObject({
        /** Serve POST /write and /api/v2/write on http.port (same credentials and ACL as MQTT). */
        enabled: z.boolean().default(true),
        /** Largest body, after gzip inflation too; a larger one gets 413 (Telegraf then splits it). */
        maxBodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(10_485_760),
        /** Longest line of line protocol. */
        maxLineBytes: z
          .number()
          .int()
          .min(256)
          .max(16 * 1024 * 1024)
          .default(262_144),
      })
      .prefault({}),
    fanout: z
      .strictObject({
        /** Frames queued per WebSocket client at most; beyond it frames are dropped and counted. */
        maxQueue: z.number().int().min(1).max(1_000_000).default(1000),
        /** A client whose socket buffer stays full this long is closed. */
        writeDeadlineMs: ms(1, 60_000).default(50),
      })
      .prefault({}),
  })
  .superRefine((e, ctx) => {
    if (e.mqtt.mode === 'external' && !e.mqtt.url)
      ctx.addIssue({
        code: 'custom',
        path: ['mqtt', 'url'],
        message: 'required when edge.mqtt.mode is external',
      });
    const grantIssue = (path: (string | number)[], f: string, who: 'device' | 'user' | 'anonymous') => {
      const why = grantProblem(f, who);
      if (why) ctx.addIssue({ code: 'custom', path: ['acl', ...path], message: why });
    };
    for (const k of ['publish', 'subscribe'] as const)
      e.acl.devices[k].forEach((f, i) => {
        grantIssue(['devices', k, i], f, 'device');
      });
    e.acl.grants.forEach((g, j) => {
      const who = g.who === 'anonymous' ? 'anonymous' : g.who.startsWith('user:') ? 'user' : 'device';
      if (who === 'user' && !e.auth.users.some((u) => `user:${u.username}` === g.who))
        ctx.addIssue({
          code: 'custom',
          path: ['acl', 'grants', j, 'who'],
          message: `${g.who} is not in edge.auth.users`,
        });
      for (const k of ['publish', 'subscribe'] as const)
        g[k].forEach((f, i) => {
          grantIssue(['grants', j, k, i], f, who);
        });
    });
    if (e.mqtt.reconnectMaxMs < e.mqtt.reconnectMinMs)
      ctx.addIssue({ code: 'custom', path: ['mqtt', 'reconnectMaxMs'], message: 'must be ≥ reconnectMinMs' });
    e.sinks.forEach((k, i) => {
      if (k.type !== 'embedded' && !k.url)
        ctx.addIssue({
          code: 'custom',
          path: ['sinks', i, 'url'],
          message: `required when type is ${k.type}`,
        });
      if (k.type === 'influx' && !k.db)
        ctx.addIssue({
          code: 'custom',
          path: ['sinks', i, 'db'],
          message: 'required when type is influx (the database, or the bucket for version 2)',
        });
      if (k.type === 'influx' && k.version === 2 && !k.org)
        ctx.addIssue({ code: 'custom', path: ['sinks', i, 'org'], message: 'required for influx version 2' });
    });
    if (e.sinks.filter((k) => k.type === 'embedded').length > 1)
      ctx.addIssue({ code: 'custom', path: ['sinks'], message: 'at most one embedded sink' });
    if (e.retry.maxMs < e.retry.minMs)
      ctx.addIssue({ code: 'custom', path: ['retry', 'maxMs'], message: 'must be ≥ retry.minMs' });
    const parts = e.topicPattern.split('/');
    if (
      parts.filter((p) => p === '{device}').length !== 1 ||
      parts.filter((p) => p === '{measurement}').length > 1
    )
      ctx.addIssue({
        code: 'custom',
        path: ['topicPattern'],
        message: 'needs {device} once and {measurement} at most once, each a whole topic level',
      });
  });

export type EdgeConfig = z.infer<typeof edgeSchema>;
export type SinkConfig = EdgeConfig['sinks'][number];

/** A sink's name (`embedded-0`, `influx-1`): its spool cursor, metrics label and /readyz entry. */
export function sinkName(s: Pick<SinkConfig, 'type'>, i: number): string {
  return `${s.type}-${i}`;
}
