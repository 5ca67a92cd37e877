import { z } from 'zod';
import { secret } from '../core/config/secret.js';

/**
 * The `gateway` section of the one config schema (composed in src/config.ts). Cross-field
 * rules (targets naming known providers, unique names) are checked here so `kapok config check`
 * reports them with their key path.
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const name = (what: string) =>
  z.string().regex(NAME, `${what} names use letters, digits and . _ : - (at most 128, no spaces)`);
const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const rate = z.number().int().min(1).max(1_000_000_000).nullable();

const provider = z.strictObject({
  name: name('provider'),
  /** `openai` covers every OpenAI-compatible server (vLLM, Ollama, llama.cpp, DeepSeek, DashScope). */
  type: z.enum(['openai', 'anthropic']),
  /** Base URL up to the API version, e.g. http://127.0.0.1:8000/v1 or https://api.anthropic.com. */
  baseUrl: z.url({ protocol: /^https?$/ }),
  /** Environment variable holding the upstream API key (resolved at load, never logged). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .nullable()
    .default(null),
  /** The key itself; prefer apiKeyEnv. Filled from apiKeyEnv when that is set. */
  apiKey: secret(z.string().min(1)).nullable().default(null),
  /** Time to the upstream's response headers, and longest gap between streamed chunks. */
  timeoutMs: ms(100, 3_600_000).default(60_000),
  connectTimeoutMs: ms(100, 120_000).default(5_000),
  /** Keep-alive connections kept open to this upstream at most. */
  maxConnections: z.number().int().min(1).max(10_000).default(256),
  /**
   * The upstream serves the OpenAI Responses API itself (OpenAI; recent vLLM and Ollama): POST
   * /v1/responses is passed through. Otherwise Kapok translates it to and from chat completions.
   */
  responsesApi: z.boolean().default(false),
  /** Extra headers sent upstream (e.g. an organisation id). */
  headers: secret(z.record(z.string(), z.string())).default({}),
});

const target = z.strictObject({
  provider: name('provider'),
  model: z.string().min(1).max(256),
  weight: z.number().int().min(0).max(1_000_000).default(1),
});

const model = z.strictObject({
  /** Client-facing name (the `model` field callers send). */
  name: name('model'),
  targets: z.array(target).min(1),
  /** Tried in order after every target failed. */
  fallbacks: z.array(target).default([]),
  /** Prompts estimated above aboveTokens go to `to` (then to fallbacks). */
  degrade: z
    .strictObject({ aboveTokens: z.number().int().min(1), to: target })
    .nullable()
    .default(null),
  /**
   * Tokenizer for prompt counts: o200k (GPT-4o family, a fair estimate for Qwen/Llama), cl100k, or
   * estimate (no rank tables, see routing/tokens.ts). Unset: o200k if the model has `degrade`, else
   * estimate (quota reservations are settled to the upstream's usage anyway).
   */
  tokenizer: z.enum(['o200k', 'cl100k', 'estimate']).optional(),
});

const limit = z.strictObject({ rpm: rate.default(600), tpm: rate.default(200_000) });

export const gatewaySchema = z
  .strictObject({
    // On by default: it needs nothing outside this machine (docs/configuration.md, "Embedded defaults").
    enabled: z.boolean().default(true),
    providers: z.array(provider).default([]),
    models: z.array(model).default([]),
    /** A header that picks the client-facing model, limited to `allowed`. */
    preference: z
      .strictObject({
        header: z
          .string()
          .regex(/^[A-Za-z0-9-]{1,64}$/, 'an HTTP header name')
          .default('X-Model-Preference'),
        allowed: z.array(name('model')).default([]),
      })
      .prefault({}),
    auth: z
      .strictObject({
        /** Accept Kapok API keys (`kapok keys create`). */
        apiKeys: z.boolean().default(true),
        /** How long a key lookup is cached; a revocation from another process takes effect within it. */
        keyCacheMs: ms(0, 300_000).default(5_000),
        jwt: z
          .strictObject({
            /** PEM (SPKI) public keys or JWK JSON strings. */
            publicKeys: z.array(z.string().min(1)).default([]),
            jwksUrl: z
              .url({ protocol: /^https?$/ })
              .nullable()
              .default(null),
            issuer: z.string().min(1).nullable().default(null),
            audience: z.string().min(1).nullable().default(null),
            algorithms: z
              .array(z.enum(['EdDSA', 'ES256', 'RS256']))
              .min(1)
              .default(['EdDSA', 'ES256', 'RS256']),
            /** Allowed clock skew for exp/nbf. */
            clockToleranceSec: z.number().int().min(0).max(300).default(30),
          })
          .prefault({}),
        /** Requests without credentials are served as subject "anonymous" (with default limits). */
        anonymous: z.boolean().default(false),
        /** Bearer token for /api/gateway/* (keys, usage); null: loopback clients only (profile default), no one (gov). */
        adminToken: secret(z.string().min(16)).nullable().default(null),
      })
      .prefault({}),
    limits: z
      .strictObject({
        /** Per key / JWT subject unless the key sets its own; null = unlimited. */
        default: limit.prefault({}),
        /** Completion tokens reserved when a request gives no max_tokens (settled with real usage). */
        defaultCompletionReserve: z.number().int().min(0).max(1_000_000).default(512),
        /** When the KV backend is down: false = 503 (fail closed), true = admit without counting. */
        failOpen: z.boolean().default(false),
      })
      .prefault({}),
    retry: z
      .strictObject({
        /** Upstream attempts per request, first try included (targets, then fallbacks). */
        maxAttempts: z.number().int().min(1).max(10).default(3),
      })
      .prefault({}),
    circuit: z
      .strictObject({
        /** Consecutive failures that open a target's circuit. */
        failureThreshold: z.number().int().min(1).max(1000).default(5),
        /** Time an open circuit waits before one probe request is let through. */
        cooldownMs: ms(100, 3_600_000).default(30_000),
      })
      .prefault({}),
    usage: z
      .strictObject({
        flushIntervalMs: ms(10, 60_000).default(1_000),
        batchSize: z.number().int().min(1).max(10_000).default(500),
        /** Records waiting to be written at most; beyond it new records are dropped and counted. */
        maxQueue: z.number().int().min(1).max(10_000_000).default(100_000),
      })
      .prefault({}),
    /** Largest /v1 request body (prompts with base64 images are large); replaces http.bodyLimitBytes there. */
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    /** Response header x-kapok-target: <provider>/<model>. */
    exposeTarget: z.boolean().default(true),
    /**
     * Answers name the target's upstream model (e.g. qwen2.5:7b-q4) instead of the model the client
     * asked for. Off: clients see their own model name; the upstream one is in x-kapok-upstream-model.
     */
    exposeUpstreamModel: z.boolean().default(false),
  })
  .superRefine((g, ctx) => {
    const providers = new Set<string>();
    g.providers.forEach((p, i) => {
      if (providers.has(p.name))
        ctx.addIssue({
          code: 'custom',
          path: ['providers', i, 'name'],
          message: `duplicate provider ${p.name}`,
        });
      providers.add(p.name);
      if (p.responsesApi && p.type !== 'openai')
        ctx.addIssue({
          code: 'custom',
          path: ['providers', i, 'responsesApi'],
          message: `provider ${p.name} is of type ${p.type}: only openai-type upstreams serve the Responses API (Kapok translates for the others)`,
        });
    });
    const models = new Set<string>();
    g.models.forEach((m, i) => {
      if (models.has(m.name))
        ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `duplicate model ${m.name}` });
      models.add(m.name);
      const check = (t: { provider: string }, path: (string | number)[]) => {
        if (!providers.has(t.provider))
          ctx.addIssue({
            code: 'custom',
            path: ['models', i, ...path, 'provider'],
            message: `names provider ${t.provider}, which gateway.providers does not define`,
          });
      };
      for (const [j, t] of m.targets.entries()) check(t, ['targets', j]);
      for (const [j, t] of m.fallbacks.entries()) check(t, ['fallbacks', j]);
      if (m.degrade) check(m.degrade.to, ['degrade', 'to']);
      if (m.targets.every((t) => t.weight === 0))
        ctx.addIssue({
          code: 'custom',
          path: ['models', i, 'targets'],
          message: 'at least one target needs weight > 0',
        });
    });
    g.preference.allowed.forEach((a, i) => {
      if (!models.has(a))
        ctx.addIssue({
          code: 'custom',
          path: ['preference', 'allowed', i],
          message: `names model ${a}, which gateway.models does not define`,
        });
    });
    if (
      g.enabled &&
      !g.auth.apiKeys &&
      !g.auth.anonymous &&
      !g.auth.jwt.publicKeys.length &&
      !g.auth.jwt.jwksUrl
    )
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message: 'no way to authenticate: enable apiKeys, configure jwt, or allow anonymous',
      });
  });

export type GatewayConfig = z.infer<typeof gatewaySchema>;
export type ProviderConfig = GatewayConfig['providers'][number];
export type ModelConfig = GatewayConfig['models'][number];
export type TargetConfig = z.infer<typeof target>;

/** Providers' `apiKeyEnv` get their key from the environment the config loader hands over. */
export function resolveGatewayEnvRefs(cfg: GatewayConfig, env: NodeJS.ProcessEnv): void {
  for (const p of cfg.providers) {
    if (p.apiKeyEnv && p.apiKey === null) p.apiKey = env[p.apiKeyEnv] || null;
  }
}
