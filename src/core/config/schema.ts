import { z } from 'zod';
import { edgeSchema } from '../../edge/config.js';
import { gatewaySchema } from '../../gateway/config.js';
import { gmSchema } from '../../gm/config.js';
import { inferenceSchema } from '../../inference/config.js';
import { v2xSchema } from '../../v2x/config.js';
import { secret } from './secret.js';

/**
 * The one configuration schema. Defaults live here and nowhere else; kapok.example.yaml mirrors them
 * (a test keeps the two equal). Objects are strict: an unknown key is an error, never ignored.
 */

export { secretSchemas } from './secret.js';

const port = z.number().int().min(0).max(65535); // 0 = an ephemeral port (tests, benchmarks)
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

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
  /** Open connections accepted at once; more are refused by the socket layer. */
  maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
  /** Trust X-Forwarded-* from a proxy in front (client IPs in logs and limits). */
  trustProxy: z.boolean().default(false),
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
});

const kv = z.strictObject({
  driver: z.enum(['memory', 'redis']).default('memory'),
  /** Redis URL (driver redis), e.g. redis://127.0.0.1:6379/0. */
  url: secret(z.string().min(1)).nullable().default(null),
  keyPrefix: z.string().default('kapok:'),
  /** Memory driver: keys held at most (expired first, then oldest evicted). */
  maxKeys: z.number().int().min(1).max(100_000_000).default(100_000),
});

export const configSchema = z
  .strictObject({
    region: z.string().min(1).default('guangzhou'),
    profile: z.enum(['default', 'gov']).default('default'),
    dataDir: z.string().min(1).default('./data'),
    /** Longest a SIGTERM/SIGINT drain waits for in-flight requests before cutting them. */
    shutdownTimeoutMs: ms(0, 600_000).default(10_000),
    http: http.prefault({}),
    grpc: z.strictObject({ port: port.default(8081) }).prefault({}),
    log: log.prefault({}),
    tracing: tracing.prefault({}),
    store: store.prefault({}),
    kv: kv.prefault({}),
    gateway: gatewaySchema.prefault({}),
    inference: inferenceSchema.prefault({}),
    edge: edgeSchema.prefault({}),
    v2x: v2xSchema.prefault({}),
    gm: gmSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.store.driver === 'postgres' && !c.store.url) {
      ctx.addIssue({
        code: 'custom',
        path: ['store', 'url'],
        message: 'required when store.driver is postgres',
      });
    }
    if (c.v2x.enabled && !c.edge.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['v2x', 'enabled'],
        message: 'v2x.enabled needs edge.enabled: true (V2X messages arrive through the edge MQTT intake)',
      });
    }
    if (c.kv.driver === 'redis' && !c.kv.url) {
      ctx.addIssue({ code: 'custom', path: ['kv', 'url'], message: 'required when kv.driver is redis' });
    }
  });

export type KapokConfig = z.infer<typeof configSchema>;
export type CapabilityName = 'gateway' | 'inference' | 'edge' | 'v2x' | 'gm';
export const CAPABILITIES: readonly CapabilityName[] = ['gateway', 'inference', 'edge', 'v2x', 'gm'];
