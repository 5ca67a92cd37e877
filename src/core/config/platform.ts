import { z } from 'zod';
import { secret } from './secret.js';

/**
 * The platform's own sections of the configuration (region, http, store, ...). The whole schema is
 * composed at the top (src/config.ts) from these and each capability's section, so core knows no
 * capability. Defaults live in the schemas and nowhere else; kapok.example.yaml mirrors them (a test
 * keeps the two equal). Objects are strict: an unknown key is an error, never ignored.
 */

const port = z.number().int().min(0).max(65535); // 0 = an ephemeral port (tests, benchmarks)
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

/** A browser origin: scheme, host and optional port, nothing after (what the Origin header holds). */
const ORIGIN = /^(\*|https?:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?)$/;

const http = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: port.default(8080),
  /** Largest request body accepted; larger ones get 413 before they are read in full. */
  bodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(1024 * 1024),
  /** Time allowed to receive a whole request (headers and body); slow clients get 408. */
  requestTimeoutMs: ms(1000, 3_600_000).default(30_000),
  /** Idle time before a keep-alive connection is closed; above common load balancers' 60 s. */
  keepAliveTimeoutMs: ms(1000, 600_000).default(72_000),
  /** Open connections at once; at the limit the longest-idle one is closed for a new one, else it is refused. */
  maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Open connections from one client address, same rule. Loopback is not exempt: behind a reverse
   * proxy every client has the proxy's address, so raise this (up to maxConnections) there.
   */
  maxConnectionsPerIp: z.number().int().min(1).max(1_000_000).default(1000),
  /** A new connection that sends no byte within this is closed (Node's timeouts start with a request). */
  firstByteTimeoutMs: ms(100, 600_000).default(10_000),
  /** Trust X-Forwarded-* from a proxy in front (client IPs in logs and limits). */
  trustProxy: z.boolean().default(false),
  /** CORS for /v1 and /v2 (docs/api.md#cors): off until origins are listed. */
  cors: z
    .strictObject({
      /** Allowed browser origins, exact (`https://app.example.com`), or `*` for any; [] = CORS off. */
      origins: z
        .array(z.string().regex(ORIGIN, 'an origin like https://app.example.com (no path), or *'))
        .max(256)
        .default([]),
      /** Let browsers send cookies and Authorization cross-origin; refused with `*`. */
      credentials: z.boolean().default(false),
      /** How long a browser may cache a preflight answer. */
      maxAgeSeconds: z.number().int().min(0).max(86_400).default(600),
    })
    .prefault({}),
});

const log = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One access-log line per request (probes /healthz, /readyz and /metrics are never logged). */
  requests: z.boolean().default(true),
  /** Extra pino redact paths on top of the built-in ones (authorization, cookies, keys, tokens). */
  redact: z.array(z.string().min(1)).default([]),
});

const tracing = z.strictObject({
  /** OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); null = no export. */
  otlpEndpoint: z
    .url({ protocol: /^https?$/ })
    .nullable()
    .default(null),
  /** Extra headers for the exporter (e.g. an auth token). */
  headers: secret(z.record(z.string(), z.string())).default({}),
  serviceName: z.string().min(1).default('kapok'),
  /** Share of new traces sampled (0..1); a sampled parent from `traceparent` is always followed. */
  sampleRatio: z.number().min(0).max(1).default(1),
});

const store = z.strictObject({
  driver: z.enum(['sqlite', 'postgres']).default('sqlite'),
  /** SQLite file, relative to dataDir unless absolute. */
  file: z.string().min(1).default('kapok.db'),
  /** PostgreSQL connection URL (driver postgres). */
  url: secret(z.string().min(1)).nullable().default(null),
  poolMax: z.number().int().min(1).max(1000).default(10),
  /**
   * SQLite: ms between WAL checkpoints run by a worker thread off the committing connection, or 0
   * for SQLite's automatic checkpoint inside the COMMIT that fills the WAL past
   * walAutocheckpointPages (that COMMIT then holds the event loop for the checkpoint's copy and fsync).
   */
  checkpointIntervalMs: z
    .number()
    .int()
    .min(0)
    .max(60_000)
    .refine((v) => v === 0 || v >= 10, '0 (off) or 10..60000 ms')
    .default(0),
  /**
   * SQLite: WAL pages past which a COMMIT runs the checkpoint itself (wal_autocheckpoint) when no
   * worker does; SQLite's 1000 by default. Larger: rarer but longer stalls, about the same in all.
   */
  walAutocheckpointPages: z.number().int().min(100).max(100_000).default(1000),
});

const kv = z.strictObject({
  driver: z.enum(['memory', 'redis']).default('memory'),
  /** Redis URL (driver redis), e.g. redis://127.0.0.1:6379/0. */
  url: secret(z.string().min(1)).nullable().default(null),
  keyPrefix: z.string().default('kapok:'),
  /** Memory driver: keys held at most (expired first, then oldest evicted). */
  maxKeys: z.number().int().min(1).max(100_000_000).default(100_000),
});

/** The fleet event bus (docs/events.md): memory for one process, nats for several. */
const events = z.strictObject({
  adapter: z.enum(['memory', 'nats']).default('memory'),
  /**
   * This instance's id, stable across its restarts: its durable NATS consumers and its outbox rows
   * are named after it. null = derived from the host name and dataDir (one per host and dataDir).
   */
  instanceId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, 'letters, digits, _ or - (at most 128)')
    .nullable()
    .default(null),
  /** Largest event (the JSON envelope); a bigger one is refused at publish (KAPOK_EVENTS_TOO_LARGE). */
  maxPayloadBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .default(65_536),
  nats: z
    .strictObject({
      /** NATS URL (adapter nats), e.g. nats://127.0.0.1:4222; several comma-separated for a cluster. */
      url: secret(z.string().min(1)).nullable().default(null),
      /** First segment of every subject; streams are named <PREFIX>_<FAMILY> (KAPOK_GATEWAY, ...). */
      subjectPrefix: z
        .string()
        .regex(/^[a-z0-9_-]{1,32}$/, 'lower-case letters, digits, _ or - (at most 32)')
        .default('kapok'),
      /** Events waiting for NATS in the Store outbox at most; past it publish is refused (KAPOK_EVENTS_OUTBOX_FULL). */
      outboxMax: z.number().int().min(1).max(10_000_000).default(10_000),
      /** Deliveries of an event whose handler fails before it is dead-lettered. */
      maxDeliver: z.number().int().min(1).max(100).default(5),
      /** Time a handler has before JetStream redelivers its event. */
      ackWaitMs: ms(1000, 600_000).default(30_000),
      /** Events kept in each stream this long (an instance down longer misses older ones). */
      maxAgeSeconds: z.number().int().min(60).max(31_536_000).default(86_400),
      /** The server removes an instance's consumers after it has been gone this long. */
      consumerInactiveSeconds: z.number().int().min(60).max(31_536_000).default(604_800),
    })
    .prefault({}),
});

/**
 * Role-scoped admin tokens, one list for every capability's admin surface (core/http/admin-auth.ts):
 * viewer reads, operator also runs things (models, zones, devices), admin also manages keys and config.
 */
const adminToken = z.strictObject({
  /** Named in logs with each admin act (never the token); letters, digits, . _ - */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, . _ - (at most 64)'),
  role: z.enum(['viewer', 'operator', 'admin']),
  token: secret(z.string().min(16).max(512)),
});
const admin = z.strictObject({
  // The whole list is a secret: an error under it never echoes what was found (config print: ***).
  tokens: secret(z.array(adminToken).max(64)).default([]),
});

/** The platform's top-level keys, to spread into the composed schema beside the capability sections. */
export const platformShape = {
  region: z.string().min(1).default('guangzhou'),
  profile: z.enum(['default', 'gov']).default('default'),
  dataDir: z.string().min(1).default('./data'),
  /**
   * On SIGTERM/SIGINT, how long Kapok keeps serving with /readyz answering 503 before it drains, so
   * a load balancer stops sending new work first (behind Kubernetes: about 5000; alone: 0).
   */
  shutdownDelayMs: ms(0, 120_000).default(0),
  /** Longest a SIGTERM/SIGINT drain waits for in-flight requests before cutting them. */
  shutdownTimeoutMs: ms(0, 600_000).default(10_000),
  http: http.prefault({}),
  grpc: z.strictObject({ port: port.default(8081) }).prefault({}),
  log: log.prefault({}),
  tracing: tracing.prefault({}),
  store: store.prefault({}),
  kv: kv.prefault({}),
  events: events.prefault({}),
  admin: admin.prefault({}),
};

const platformSchema = z.strictObject(platformShape);
export type PlatformConfig = z.infer<typeof platformSchema>;

/** Cross-field rules of the platform sections; the composed schema runs them in its superRefine. */
export function checkPlatform(c: PlatformConfig, ctx: z.RefinementCtx): void {
  if (c.store.driver === 'postgres' && !c.store.url) {
    ctx.addIssue({
      code: 'custom',
      path: ['store', 'url'],
      message: 'required when store.driver is postgres',
    });
  }
  if (c.kv.driver === 'redis' && !c.kv.url) {
    ctx.addIssue({ code: 'custom', path: ['kv', 'url'], message: 'required when kv.driver is redis' });
  }
  if (c.events.adapter === 'nats' && !c.events.nats.url) {
    ctx.addIssue({
      code: 'custom',
      path: ['events', 'nats', 'url'],
      message: 'required when events.adapter is nats',
    });
  }
  // The CORS spec forbids `*` with credentials; browsers would refuse every credentialed answer.
  if (c.http.cors.credentials && c.http.cors.origins.includes('*'))
    ctx.addIssue({
      code: 'custom',
      path: ['http', 'cors', 'credentials'],
      message: 'cannot be true with origins ["*"]: list the exact origins that may send credentials',
    });
  // Names identify tokens in logs, tokens identify callers: both must be unique (never echoed).
  const names = new Set<string>();
  const tokens = new Map<string, number>();
  c.admin.tokens.forEach((t, i) => {
    if (names.has(t.name))
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'tokens', i, 'name'],
        message: `duplicate name ${t.name}`,
      });
    names.add(t.name);
    const same = tokens.get(t.token);
    if (same !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'tokens', i, 'token'],
        message: `same secret as admin.tokens.${same}.token: give each token its own`,
      });
    else tokens.set(t.token, i);
  });
}

/** The platform sections alone: a configuration schema for core's own tests and tools. */
export const platformConfigSchema = platformSchema.superRefine(checkPlatform);
