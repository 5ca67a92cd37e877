import { z } from 'zod';
import { auditSchema } from './audit/config.js';
import { consoleSchema } from './console/config.js';
import { controlSchema } from './control/config.js';
import {
  type ConfigSpec,
  checkPlatform,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  type PlatformConfig,
  platformShape,
} from './core/config/index.js';
import { configKeysFromEnv, decryptConfigTree } from './crypto/config-values.js';
import { edgeSchema } from './edge/config.js';
import { gatewaySchema, resolveGatewayEnvRefs } from './gateway/config.js';
import { gmSchema } from './gm/config.js';
import { inferenceSchema } from './inference/config.js';
import { jobsSchema } from './jobs/config.js';
import { operatorSchema } from './operator/config.js';
import { sagaSchema } from './saga/config.js';
import { v2xSchema } from './v2x/config.js';

/**
 * The one configuration schema, composed here beside the wiring point (src/app.ts): the platform's
 * sections from core, one section per capability, and the rules that span sections. Core knows no
 * capability; a capability knows only its own section.
 */

const composed = z.strictObject({
  ...platformShape,
  gateway: gatewaySchema.prefault({}),
  inference: inferenceSchema.prefault({}),
  edge: edgeSchema.prefault({}),
  v2x: v2xSchema.prefault({}),
  gm: gmSchema.prefault({}),
  audit: auditSchema.prefault({}),
  control: controlSchema.prefault({}),
  jobs: jobsSchema.prefault({}),
  saga: sagaSchema.prefault({}),
  operator: operatorSchema.prefault({}),
  console: consoleSchema.prefault({}),
});

export const configSchema = composed.superRefine((c, ctx) => {
  checkPlatform(c, ctx);
  if (c.v2x.enabled && !c.edge.enabled) {
    ctx.addIssue({
      code: 'custom',
      path: ['v2x', 'enabled'],
      message: 'v2x.enabled needs edge.enabled: true (V2X messages arrive through the edge MQTT intake)',
    });
  }
  checkAdminTokens(c, ctx);
});

/** Each capability's own admin token: role admin for that capability (docs/configuration.md#admin-access). */
function capabilityTokens(c: KapokConfig): Array<[CapabilityName, string[], string | null]> {
  return [
    ['gateway', ['gateway', 'auth', 'adminToken'], c.gateway.auth.adminToken],
    ['inference', ['inference', 'adminToken'], c.inference.adminToken],
    ['edge', ['edge', 'adminToken'], c.edge.adminToken],
    ['v2x', ['v2x', 'adminToken'], c.v2x.adminToken],
    ['gm', ['gm', 'adminToken'], c.gm.adminToken],
    ['audit', ['audit', 'adminToken'], c.audit.adminToken],
    ['control', ['control', 'adminToken'], c.control.adminToken],
    ['jobs', ['jobs', 'adminToken'], c.jobs.adminToken],
    ['saga', ['saga', 'adminToken'], c.saga.adminToken],
  ];
}

/**
 * A capability token may not repeat a role token (which role would it be?). Under profile gov, no
 * anonymous clients and no enabled capability without an admin token: a gov start never comes up
 * with an open or unusable admin API.
 */
function checkAdminTokens(c: KapokConfig, ctx: z.RefinementCtx): void {
  const roleTokens = new Set(c.admin.tokens.map((t) => t.token));
  for (const [name, path, token] of capabilityTokens(c)) {
    if (token && roleTokens.has(token))
      ctx.addIssue({
        code: 'custom',
        path,
        message: 'same secret as a token of admin.tokens: give each token its own',
      });
    if (c.profile === 'gov' && c[name].enabled && !token && roleTokens.size === 0)
      ctx.addIssue({
        code: 'custom',
        path,
        message: `profile gov needs an admin token for ${name}: set ${path.join('.')} or list admin.tokens`,
      });
  }
  if (c.profile !== 'gov') return;
  // 等保 level 3 (GB/T 22239-2019, 8.1.4.3 security audit): every administrative act is recorded.
  if (!c.audit.enabled)
    ctx.addIssue({
      code: 'custom',
      path: ['audit', 'enabled'],
      message: 'profile gov needs the audit trail: set audit.enabled: true and audit.kek (KAPOK_AUDIT__KEK)',
    });
  const anonymous: Array<[string[], boolean]> = [
    [['gateway', 'auth', 'anonymous'], c.gateway.auth.anonymous],
    [['edge', 'auth', 'anonymous'], c.edge.auth.anonymous],
  ];
  for (const [path, on] of anonymous)
    if (on)
      ctx.addIssue({
        code: 'custom',
        path,
        message: `profile gov refuses anonymous clients: set ${path.join('.')}: false and give clients credentials`,
      });
  // A KEK generated beside the data it protects is for trying Kapok, never for a gov host.
  if (c.gm.enabled && !c.gm.kek && !c.gm.kekFile)
    ctx.addIssue({
      code: 'custom',
      path: ['gm', 'kek'],
      message:
        'profile gov needs gm.kek or gm.kekFile (a KEK kept apart from the data); e.g. KAPOK_GM__KEK_FILE=/etc/kapok/gm.kek holding $(openssl rand -hex 16)',
    });
  // The switch exists for closed benchmark rigs; a gov host never runs MQTT without authorization.
  if (!c.edge.acl.enabled)
    ctx.addIssue({
      code: 'custom',
      path: ['edge', 'acl', 'enabled'],
      message: 'profile gov refuses MQTT without authorization: remove edge.acl.enabled: false',
    });
}

export type KapokConfig = z.infer<typeof configSchema>;
export type KapokLoadedConfig = LoadedConfig<KapokConfig>;

/** The capability sections (each has `enabled`); one issue each adds its entry. */
export type CapabilityName = Exclude<keyof KapokConfig, keyof PlatformConfig>;
export const CAPABILITIES: readonly CapabilityName[] = [
  'gateway',
  'inference',
  'edge',
  'v2x',
  'gm',
  'audit',
  'control',
  'jobs',
  'saga',
  'operator',
  'console',
];

const spec: ConfigSpec<KapokConfig> = {
  schema: configSchema,
  resolveEnvRefs: (config, env) => resolveGatewayEnvRefs(config.gateway, env),
  decrypt: (raw, env) => decryptConfigTree(raw, () => configKeysFromEnv(env)),
};

/** Reads `--config`/`./kapok.yaml` and KAPOK_* overrides into the validated Kapok configuration. */
export function loadKapokConfig(opts: LoadOptions = {}): KapokLoadedConfig {
  return loadConfig(spec, opts);
}
