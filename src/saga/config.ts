import { z } from 'zod';
import { secret } from '../core/config/secret.js';

/** The default time limit of one call per target kind: the brief's TongWeb gateway 15 s, EOS TM 60 s. */
export const KIND_TIMEOUT_MS = { http: 10_000, tongweb: 15_000, eos: 60_000 } as const;
export type TargetKind = keyof typeof KIND_TIMEOUT_MS;

const headerName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'expected an HTTP header name');

/**
 * A branch target: the only places branches may call (the allow-list). A branch URL must start with
 * a target's url; the target's kind decides the bridge's headers, content type and error mapping.
 */
const targetSchema = z.strictObject({
  /** Name shown in errors, dead letters and metrics. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i, 'letters, digits, _ or - (1-64)'),
  /** Base URL: http(s)://host[:port]/path/ or nats://<subject prefix>. */
  url: z
    .string()
    .max(512)
    .refine(
      (u) => /^(https?:\/\/[^\s]+|nats:\/\/[A-Za-z0-9_.>*-]+)$/.test(u),
      'expected http(s)://… or nats://subject',
    ),
  /** http: plain JSON over HTTP; tongweb: TongWeb gateway (JSON only, session passthrough); eos: EOS-style TM. */
  kind: z.enum(['http', 'tongweb', 'eos']).default('http'),
  /** One call's limit; null: the kind's default (http 10 s, tongweb 15 s, eos 60 s). */
  timeoutMs: z.number().int().min(1).max(600_000).nullable().default(null),
  /** Headers added to every call to this target (static values, e.g. an API key). */
  headers: z.record(headerName, secret(z.string().max(4096))).default({}),
  /**
   * Client request headers passed through to this target when the transaction was submitted with
   * them; null: the kind's (tongweb: X-TongWeb-Session; eos: X-EOS-Transaction-ID).
   */
  passHeaders: z.array(headerName).max(16).nullable().default(null),
});
export type SagaTarget = z.infer<typeof targetSchema>;

/** The `saga` configuration section: the saga coordinator (docs/saga.md). */
export const sagaSchema = z
  .strictObject({
    /** Run the coordinator: /api/saga, the retry worker, crash recovery. */
    enabled: z.boolean().default(false),
    /** Admin token for /api/saga (role admin for saga alone); null: admin.tokens or loopback only. */
    adminToken: secret(z.string().min(16)).nullable().default(null),
    /** Where branches may call (none by default: every branch URL is refused until a target is listed). */
    targets: z.array(targetSchema).max(256).default([]),
    /** The coordinator's own limit on one branch call: a branch's timeout must be below it. */
    coordinatorTimeoutMs: z.number().int().min(1).max(600_000).default(30_000),
    /** A transaction's global limit when it names none: the coordinator's must be below it. */
    transactionTimeoutMs: z.number().int().min(1).max(86_400_000).default(300_000),
    /** Largest transaction body accepted by POST /api/saga/transactions. */
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024),
    /** Largest branch response read (the rest is cut; answers are for status, not data). */
    maxResponseBytes: z
      .number()
      .int()
      .min(256)
      .max(16 * 1024 * 1024)
      .default(64 * 1024),
    retry: z
      .strictObject({
        /** First retry after this long; doubles each attempt (full jitter), up to maxMs. */
        baseMs: z.number().int().min(1).max(3_600_000).default(1000),
        /** Cap of one retry interval, also of a transaction's own retryIntervalMs. */
        maxMs: z.number().int().min(1).max(86_400_000).default(60_000),
        /** Calls of one branch operation before it gives up (then compensation or dead letter). */
        maxAttempts: z.number().int().min(1).max(1000).default(8),
      })
      .prefault({}),
    /** How long a coordinator owns a transaction it drives without renewing (crash recovery window). */
    leaseMs: z.number().int().min(500).max(600_000).default(5000),
    /** How often to look for transactions due (retries, recovery). */
    pollMs: z.number().int().min(10).max(60_000).default(200),
    /** Transactions driven at once by this coordinator. */
    concurrency: z.number().int().min(1).max(10_000).default(64),
    /** NATS server for nats:// branches (request-reply); null: nats:// targets are refused at start. */
    natsUrl: z.string().max(512).nullable().default(null),
  })
  .superRefine((c, ctx) => {
    if (c.retry.baseMs > c.retry.maxMs)
      ctx.addIssue({
        code: 'custom',
        path: ['retry', 'baseMs'],
        message: 'must not exceed saga.retry.maxMs',
      });
    if (c.coordinatorTimeoutMs >= c.transactionTimeoutMs)
      ctx.addIssue({
        code: 'custom',
        path: ['coordinatorTimeoutMs'],
        message: 'must be below saga.transactionTimeoutMs (branch < coordinator < global)',
      });
    const names = new Set<string>();
    for (const [i, t] of c.targets.entries()) {
      if (names.has(t.name))
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'name'], message: `${t.name} appears twice` });
      names.add(t.name);
      if (t.url.startsWith('nats://') && !c.natsUrl && c.enabled)
        ctx.addIssue({
          code: 'custom',
          path: ['natsUrl'],
          message: `target ${t.name} is nats://: set saga.natsUrl (e.g. nats://127.0.0.1:4222)`,
        });
    }
  });

export type SagaConfig = z.infer<typeof sagaSchema>;
